package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// auditEnv is a server whose every request is audited into its own SQLite
// store, as the server command wires it.
type auditEnv struct {
	*env
	db     *sqlite.DB
	broker *audit.Broker
}

func mustServeAudited(tb testing.TB) *auditEnv {
	tb.Helper()
	e := MustServe(tb)
	b := mustAudit(tb, e)
	db := e.core.Store.(*sqlite.DB)
	e.api.Audit = b.Record
	e.api.AuditLog = &httpapi.AuditLog{Store: db, PublicKey: b.Signer.PublicKey(), PollInterval: 5 * time.Millisecond}
	return &auditEnv{env: e, db: db, broker: b}
}

func (e *auditEnv) entries(tb testing.TB) []*tokenward.AuditEntry {
	tb.Helper()
	var out []*tokenward.AuditEntry
	for en, err := range e.db.AuditEntries(tb.Context()) {
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, en)
	}
	return out
}

// TestAuditAuthorizationMatrix drives the audit routes with every kind of
// principal: deny by default.
func TestAuditAuthorizationMatrix(t *testing.T) {
	e := mustServeAudited(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	tokens := map[string]string{"admin": e.admin}
	_, tokens["auditor"] = e.mustToken(t, e.admin, "auditor", "", "audit:*/*/*")
	_, tokens["narrow"] = e.mustToken(t, e.admin, "narrow", "", "audit:payments/prod/*")
	_, tokens["reader"] = e.mustToken(t, e.admin, "reader", "", "read:payments/prod/*")
	var revokedID string
	revokedID, tokens["revoked"] = e.mustToken(t, e.admin, "revoked", "", "audit:*/*/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)
	tokens["none"] = ""
	steps := []struct {
		path string
		ok   []string
	}{
		{"/v1/audit/entries", []string{"admin", "auditor", "narrow"}},
		{"/v1/audit/export", []string{"admin", "auditor"}},
		{"/v1/audit/verify", []string{"admin", "auditor"}},
		{"/v1/audit/key", []string{"admin", "auditor", "narrow"}},
	}
	for _, st := range steps {
		for _, who := range []string{"admin", "auditor", "narrow", "reader", "revoked", "none"} {
			want := 403
			for _, ok := range st.ok {
				if ok == who {
					want = 200
				}
			}
			if who == "revoked" || who == "none" {
				want = 401
			}
			t.Run("GET "+st.path+" as "+who, func(t *testing.T) {
				if got, b := e.do(t, tokens[who], "GET", st.path, nil); got != want {
					t.Fatalf("got %d %s; want %d", got, b, want)
				}
			})
		}
	}
	var feature int
	for _, r := range e.api.Routes() {
		if strings.HasPrefix(r, "GET /v1/audit/") {
			feature++
		}
	}
	if feature != len(steps) {
		t.Fatalf("matrix covers %d audit routes; the server has %d", len(steps), feature)
	}
}

// TestAuditRecordsDenied: refused requests are audited too, naming the
// revoked or expired token that was presented (a leak signal), and the
// trail never holds a token or a secret value.
func TestAuditRecordsDenied(t *testing.T) {
	e := mustServeAudited(t)
	const value = "sk_live_AUDITVALUE_0123456789"
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": value}, 200)
	readerID, reader := e.mustToken(t, e.admin, "reader", "", "read:payments/prod/*")
	revokedID, revoked := e.mustToken(t, e.admin, "leaked", "", "read:payments/prod/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)
	expiredID, expired := e.mustToken(t, e.admin, "short", "1h", "read:payments/prod/*")
	e.clock.Add(2 * time.Hour)
	unknown, _ := tokenward.NewTokenSecret(tokenward.TokenService)

	before := len(e.entries(t))
	e.mustDo(t, reader, "GET", "/v1/secrets/payments/prod/KEY", nil, 200)
	e.mustDo(t, reader, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": "x"}, 403)
	e.mustDo(t, revoked, "GET", "/v1/secrets/payments/prod/KEY", nil, 401)
	e.mustDo(t, expired, "GET", "/v1/secrets/payments/prod/KEY", nil, 401)
	e.mustDo(t, unknown, "GET", "/v1/secrets/payments/prod/KEY", nil, 401)
	e.mustDo(t, "", "GET", "/v1/secrets/payments/prod/KEY", nil, 401)
	got := e.entries(t)[before:]
	want := []struct {
		tokenID, outcome string
		status           int
	}{
		{readerID, tokenward.OutcomeAllowed, 200},
		{readerID, tokenward.OutcomeDenied, 403},
		{revokedID, tokenward.OutcomeDenied, 401},
		{expiredID, tokenward.OutcomeDenied, 401},
		{"", tokenward.OutcomeDenied, 401},
		{"", tokenward.OutcomeDenied, 401},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries; want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Resource != "payments/prod/KEY" {
			t.Errorf("entry %d: got resource %q; want payments/prod/KEY", i, g.Resource)
		}
		if g.TokenID != w.tokenID || g.Outcome != w.outcome || g.Status != w.status || g.Action != "secret.read" && i != 1 {
			t.Errorf("entry %d: got token %q %s %d %s; want %q %s %d", i, g.TokenID, g.Outcome, g.Status, g.Action, w.tokenID, w.outcome, w.status)
		}
	}
	// A token pasted where an id or name belongs lands in the path and the
	// error message: the trail gets it redacted.
	e.do(t, e.admin, "GET", "/v1/tokens/"+reader, nil)
	e.do(t, e.admin, "POST", "/v1/tokens/"+revoked+"/revoke", nil)
	if all := e.entries(t); !strings.Contains(all[len(all)-1].Resource, "[redacted]") {
		t.Fatalf("got resource %q; want the token redacted", all[len(all)-1].Resource)
	}
	// The whole table, raw: no token and no value, in any column.
	raw, err := sql.Open("sqlite", "file:"+e.db.Path+"?_pragma=busy_timeout(5000)&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var dump string
	if err := raw.QueryRow(`SELECT group_concat(seq || request_id || token_id || token_name || action || resource || outcome || reason || source_ip || user_agent || ci || meta, '|') FROM audit_entries`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"value": value, "admin token": e.admin, "reader token": reader, "revoked token": revoked, "expired token": expired, "unknown token": unknown} {
		if strings.Contains(dump, s) {
			t.Errorf("audit table holds the %s", name)
		}
	}
}

// TestAuditFailClosed makes the audit table refuse inserts (a trigger added
// to the real SQLite file): a secret read is refused with 503 and the value
// is not in the answer; once the table takes writes again, requests pass
// and the chain still verifies.
func TestAuditFailClosed(t *testing.T) {
	e := mustServeAudited(t)
	const value = "sk_live_FAILCLOSED_987654321"
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": value}, 200)
	raw, err := sql.Open("sqlite", "file:"+e.db.Path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER audit_block BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit table is read-only'); END`); err != nil {
		t.Fatal(err)
	}
	// Concurrent requests share a group commit; all of them are refused.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, b := e.do(t, e.admin, "GET", "/v1/secrets/payments/prod/KEY", nil)
			if got != 503 || strings.Contains(string(b), value) {
				t.Errorf("got %d %s; want 503 without the value", got, b)
			}
		}()
	}
	wg.Wait()
	if st := e.broker.Stats(); st.PrimaryFailures < 8 {
		t.Errorf("got %d primary failures; want >= 8", st.PrimaryFailures)
	}
	if _, err := raw.Exec(`DROP TRIGGER audit_block`); err != nil {
		t.Fatal(err)
	}
	b := e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/prod/KEY", nil, 200)
	if !strings.Contains(string(b), value) {
		t.Fatalf("got %s; want the value once audit works again", b)
	}
	var rep struct {
		audit.Report
		api.AuditVerdict
	}
	if err := json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/audit/verify", nil, 200), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.AuditVerdict.OK {
		t.Fatalf("verify after refusals: got problems %v; want ok", rep.Problems)
	}
}

// TestAuditSearch filters by the caller's grants and the query.
func TestAuditSearch(t *testing.T) {
	e := mustServeAudited(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	for _, env := range []string{"prod", "dev"} {
		e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/"+env+"/KEY", map[string]any{"value": "v"}, 200)
		e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/"+env+"/KEY", nil, 200)
	}
	_, narrow := e.mustToken(t, e.admin, "narrow", "", "audit:payments/prod/*")
	search := func(token, query string) []*tokenward.AuditEntry {
		var page api.AuditEntriesResponse
		if err := json.Unmarshal(e.mustDo(t, token, "GET", "/v1/audit/entries"+query, nil, 200), &page); err != nil {
			t.Fatal(err)
		}
		return page.Entries
	}
	secrets := search(e.admin, "?action=secret.*") // write and read prod, write and read dev
	if len(secrets) != 4 {
		t.Fatalf("secret entries: got %d; want 4", len(secrets))
	}
	tests := []struct {
		name, token, query string
		want               []string // action resource
	}{
		{"admin secret reads", e.admin, "?action=secret.read", []string{"secret.read payments/prod/KEY", "secret.read payments/dev/KEY"}},
		{"admin before", e.admin, fmt.Sprintf("?action=secret.*&order=newest&before=%d", secrets[3].Seq), []string{"secret.write payments/dev/KEY", "secret.read payments/prod/KEY", "secret.write payments/prod/KEY"}},
		{"admin after and before", e.admin, fmt.Sprintf("?after=%d&before=%d", secrets[0].Seq, secrets[3].Seq), []string{"secret.read payments/prod/KEY", "secret.write payments/dev/KEY"}},
		{"admin resource glob", e.admin, "?resource=payments/dev/*", []string{"secret.write payments/dev/KEY", "secret.read payments/dev/KEY"}},
		{"admin newest", e.admin, "?action=secret.*&order=newest&limit=1", []string{"secret.read payments/dev/KEY"}},
		{"narrow sees its env only", narrow, "?action=secret.*", []string{"secret.write payments/prod/KEY", "secret.read payments/prod/KEY"}},
		{"narrow never sees tokens", narrow, "?action=token.*", nil},
		// The newest secret.* entries are dev's: the page is filled from
		// further back, as oldest first does.
		{"narrow newest", narrow, "?action=secret.*&order=newest&limit=1", []string{"secret.read payments/prod/KEY"}},
		{"narrow newest, all it may see", narrow, "?order=newest", []string{"secret.read payments/prod/KEY", "secret.write payments/prod/KEY"}},
		{"narrow pages back", narrow, fmt.Sprintf("?order=newest&before=%d", secrets[1].Seq), []string{"secret.write payments/prod/KEY"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, en := range search(tc.token, tc.query) {
				got = append(got, en.Action+" "+en.Resource)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v; want %v", got, tc.want)
			}
		})
	}
	// Newest first, next is the newest seq looked at even when the caller
	// may see none of it: `audit tail -f` follows the trail from there, not
	// from seq 0.
	tokens := search(e.admin, "?action=token.*&order=newest&limit=1")
	var page api.AuditEntriesResponse
	if err := json.Unmarshal(e.mustDo(t, narrow, "GET", "/v1/audit/entries?action=token.*&order=newest&limit=1", nil, 200), &page); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 1 || len(page.Entries) != 0 || page.Next != tokens[0].Seq {
		t.Errorf("narrow newest token.*: got %d entries, next %d; want none, next %d", len(page.Entries), page.Next, tokens[0].Seq)
	}
	for _, q := range []string{"?outcome=maybe", "?limit=0", "?limit=5000", "?after=-1", "?before=-1", "?before=x", "?since=yesterday", "?wait=1h", "?order=random", "?action=a*b", "?wait=1s&order=newest"} {
		if got, b := e.do(t, e.admin, "GET", "/v1/audit/entries"+q, nil); got != 400 {
			t.Errorf("%s: got %d %s; want 400", q, got, b)
		}
	}
}

// TestAuditTail: a waiting search returns as soon as a matching entry is
// recorded, skips the tail's own polls, and ends empty when wait runs out.
func TestAuditTail(t *testing.T) {
	e := mustServeAudited(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	last := e.entries(t)
	after := last[len(last)-1].Seq
	var page api.AuditEntriesResponse
	// Nothing new: the wait runs out with an empty answer; the poll's own
	// entry is not returned to the next poll.
	if err := json.Unmarshal(e.mustDo(t, e.admin, "GET", fmt.Sprintf("/v1/audit/entries?after=%d&wait=30ms", after), nil, 200), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 0 {
		t.Fatalf("got %d entries; want none", len(page.Entries))
	}
	done := make(chan api.AuditEntriesResponse)
	go func() {
		var p api.AuditEntriesResponse
		_, b := e.do(t, e.admin, "GET", fmt.Sprintf("/v1/audit/entries?after=%d&wait=20s", after), nil)
		json.Unmarshal(b, &p)
		done <- p
	}()
	e.mustDo(t, e.admin, "GET", "/v1/projects/payments", nil, 200)
	select {
	case p := <-done:
		if len(p.Entries) != 1 || p.Entries[0].Action != "project.read" {
			t.Fatalf("got %+v; want the one project.read entry (the tail's own polls skipped)", p.Entries)
		}
		if p.Next != p.Entries[0].Seq {
			t.Fatalf("got next %d; want %d", p.Next, p.Entries[0].Seq)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the tail did not return the new entry")
	}
}

// TestAuditKeyAndExport: the export verifies offline with the served key.
func TestAuditKeyAndExport(t *testing.T) {
	e := mustServeAudited(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	if _, err := e.broker.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	var key api.AuditKeyResponse
	if err := json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/audit/key", nil, 200), &key); err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKey([]byte(key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/audit/export", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("got %d %s; want 200 application/x-ndjson", resp.StatusCode, ct)
	}
	data, err := audit.ReadExport(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(data.All(), data.Checkpoints, pub)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.LastCheckpointSeq != 1 || len(data.Checkpoints) != 1 {
		t.Fatalf("got ok=%v checkpoint seq %d, %d checkpoints; want ok, 1, 1", rep.OK(), rep.LastCheckpointSeq, len(data.Checkpoints))
	}
	// The export request itself was audited before streaming.
	all := e.entries(t)
	if got := all[len(all)-1].Action; got != "audit.key" && got != "audit.export" {
		t.Fatalf("last entry %s; want the export or key read", got)
	}
}

// TestMetrics: requests are counted by route pattern, never by path (which
// holds secret names).
func TestMetrics(t *testing.T) {
	e := MustServe(t)
	e.api.Metrics = httpapi.NewMetrics()
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/SECRET_NAME_X", map[string]any{"value": "v"}, 200)
	e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/prod/SECRET_NAME_X", nil, 200)
	e.mustDo(t, "", "GET", "/v1/secrets/payments/prod/SECRET_NAME_X", nil, 401)
	e.do(t, "", "GET", "/v1/nope/SECRET_NAME_X", nil)
	srv := httptest.NewServer(e.api.Metrics.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`tokenward_http_requests_total{code="200",route="GET /v1/secrets/{project}/{env}/{name}"} 1`,
		`tokenward_http_requests_total{code="401",route="GET /v1/secrets/{project}/{env}/{name}"} 1`,
		`tokenward_http_requests_total{code="201",route="POST /v1/projects"} 1`,
		`tokenward_http_requests_total{code="404",route="unmatched"} 1`,
		`tokenward_http_request_duration_seconds_count{route="PUT /v1/secrets/{project}/{env}/{name}"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), "SECRET_NAME_X") || strings.Contains(string(body), "payments") {
		t.Errorf("metrics hold a secret or project name")
	}
	// Prometheus-style buckets with the bounds dashboards were built on.
	types, _, samples := parseExposition(t, string(body))
	if types["tokenward_http_requests_total"] != "counter" || types["tokenward_http_request_duration_seconds"] != "histogram" {
		t.Errorf("types: got %v; want the requests counter and the latency histogram", types)
	}
	var les []string
	for _, s := range samples {
		if s.name == "tokenward_http_request_duration_seconds_bucket" && s.labels["route"] == "POST /v1/projects" {
			les = append(les, s.labels["le"])
		}
	}
	if got, want := strings.Join(les, " "), "0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 10 30 +Inf"; got != want {
		t.Errorf("latency buckets: got %s; want %s", got, want)
	}
}

// TestAuditMetaOfReads: a secret read's entry names its version and an
// environment fetch's the number of values it answered. Both Metas are
// shared between requests (a map per request was a tenth of a read's
// allocation), so recording one must not change another.
func TestAuditMetaOfReads(t *testing.T) {
	e := mustServeAudited(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	for _, n := range []string{"A", "B", "C"} {
		e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/"+n, map[string]any{"value": "v-" + n}, 200)
	}
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/A", map[string]any{"value": "v-A2"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/dev/A", map[string]any{"value": "v-dev"}, 200)
	_, narrow := e.mustToken(t, e.admin, "narrow", "", "read:payments/prod/A*", "read:payments/prod/B")
	steps := []struct {
		token, path, action, key, want string
	}{
		{e.admin, "/v1/secrets/payments/prod/A", "secret.read", "version", "2"},
		{e.admin, "/v1/secrets/payments/prod/B", "secret.read", "version", "1"},
		{e.admin, "/v1/secrets/payments/prod/A?version=1", "secret.read", "version", "1"},
		{e.admin, "/v1/values/payments/prod", "secret.read_env", "count", "3"},
		{narrow, "/v1/values/payments/prod", "secret.read_env", "count", "2"},
		{e.admin, "/v1/values/payments/dev", "secret.read_env", "count", "1"},
		{e.admin, "/v1/values/payments/prod", "secret.read_env", "count", "3"},
	}
	for _, s := range steps {
		e.mustDo(t, s.token, "GET", s.path, nil, 200)
	}
	if err := e.broker.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []*tokenward.AuditEntry
	for _, en := range e.entries(t) {
		if en.Action == "secret.read" || en.Action == "secret.read_env" {
			got = append(got, en)
		}
	}
	if len(got) != len(steps) {
		t.Fatalf("got %d read entries; want %d", len(got), len(steps))
	}
	for i, s := range steps {
		if en := got[i]; en.Action != s.action || len(en.Meta) != 1 || en.Meta[s.key] != s.want {
			t.Errorf("GET %s: got %s with meta %v; want %s with %s=%s", s.path, en.Action, en.Meta, s.action, s.key, s.want)
		}
	}
}

// failingTrail is a store whose entries fail to read after the first
// `after` (a database that goes away during an export).
type failingTrail struct {
	*sqlite.DB
	after int
}

func (f failingTrail) AuditEntries(ctx context.Context) iter.Seq2[*tokenward.AuditEntry, error] {
	return func(yield func(*tokenward.AuditEntry, error) bool) {
		n := 0
		for e, err := range f.DB.AuditEntries(ctx) {
			if n == f.after {
				yield(nil, errors.New("disk I/O error"))
				return
			}
			if !yield(e, err) {
				return
			}
			n++
		}
	}
}

// TestAuditExportFailsLoudly: an export the server cannot finish is not
// answered as a whole one. Before any byte it is an error answer; once it
// streams, the response is cut off, so the client sees it did not end
// (it used to end cleanly: `audit export` wrote what had come, even
// nothing at all, and exited 0).
func TestAuditExportFailsLoudly(t *testing.T) {
	e := mustServeAudited(t)
	for i := range 40 {
		e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": fmt.Sprintf("p%d", i), "environments": []string{"prod"}}, 201)
	}
	for _, after := range []int{0, 2, 30} { // nothing, less than a buffer, several buffers sent
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			e.api.AuditLog.Store = failingTrail{e.db, after}
			req, _ := http.NewRequest("GET", e.srv.URL+"/v1/audit/export", nil)
			req.Header.Set("Authorization", "Bearer "+e.admin)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				return // cut off before the answer's headers: a failure the client sees
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if resp.StatusCode == 200 && err == nil {
				t.Fatalf("got a complete 200 export of %d bytes; want an error answer or a cut-off body", len(body))
			}
		})
	}
}
