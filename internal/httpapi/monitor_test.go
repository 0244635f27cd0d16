package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlite"
	"github.com/tokenward/tokenward/internal/webhook"
)

// hookSink is a webhook receiver on loopback that verifies signatures.
type hookSink struct {
	srv    *httptest.Server
	secret []byte
	mu     sync.Mutex
	bodies [][]byte
	bad    int
	got    chan struct{}
}

func newHookSink(tb testing.TB, secret string) *hookSink {
	tb.Helper()
	h := &hookSink{secret: []byte(secret), got: make(chan struct{}, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := webhook.Verify(h.secret, r.Header, b, time.Now(), 5*time.Minute); err != nil {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.bodies = append(h.bodies, b)
		select {
		case h.got <- struct{}{}: // a wake-up for wait, which counts bodies
		default: // one is pending already: never block the sender
		}
	}))
	tb.Cleanup(h.srv.Close)
	return h
}

// wait waits for n verified deliveries in all.
func (h *hookSink) wait(tb testing.TB, n int) [][]byte {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		if len(h.bodies) >= n {
			out := append([][]byte(nil), h.bodies...)
			h.mu.Unlock()
			return out
		}
		h.mu.Unlock()
		select {
		case <-h.got:
		case <-deadline:
			tb.Fatalf("got %d verified webhook deliveries; want %d", len(h.bodies), n)
		}
	}
}

// monEnv is a server with monitoring on, alerts and events going to
// signed receivers, and an audit hook that keeps every entry.
type monEnv struct {
	*env
	mg     *core.Monitoring
	alerts *hookSink
	events *hookSink
	mu     sync.Mutex
	audit  []*tokenward.AuditEntry
}

const hookSecret = "0123456789abcdef-test-hook-secret"

func mustServeMonitor(tb testing.TB) *monEnv {
	tb.Helper()
	e := &monEnv{env: MustServe(tb), alerts: newHookSink(tb, hookSecret), events: newHookSink(tb, hookSecret)}
	mon, err := monitor.New(monitor.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	sender := monitor.NewSender(nil)
	sender.Sleep = func(ctx context.Context, d time.Duration) error { return nil }
	ev := monitor.NewEvents(sender, []monitor.Webhook{{URL: e.events.srv.URL, Format: monitor.FormatSigned, Secret: []byte(hookSecret)}}, nil)
	if err := ev.Open(); err != nil {
		tb.Fatal(err)
	}
	e.mg = &core.Monitoring{
		Store: e.core.Store.(core.MonitorStore), Monitor: mon, Events: ev,
		Alerter: &monitor.Alerter{Sender: sender, Hooks: []monitor.Webhook{{URL: e.alerts.srv.URL, Format: monitor.FormatSigned, Secret: []byte(hookSecret)}}},
	}
	e.core.Monitoring = e.mg
	if err := e.core.LoadMonitorState(context.Background()); err != nil {
		tb.Fatal(err)
	}
	hook := func(ctx context.Context, a *tokenward.AuditEntry) error {
		e.mu.Lock()
		// The server stamps entries with the wall clock and the engine
		// decides expiry on its own; in production both are time.Now. Here
		// the engine runs on the test clock, so entries must too.
		a.Time = e.clock.Now()
		a.Seq = int64(len(e.audit) + 1)
		e.audit = append(e.audit, a)
		e.mu.Unlock()
		e.core.ObserveAudit(ctx, a)
		return nil
	}
	e.api.Audit, e.mg.Record = hook, hook
	tb.Cleanup(func() {
		ev.Close(context.Background())
		e.mg.Wait()
	})
	return e
}

func (e *monEnv) entries(action string) []*tokenward.AuditEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*tokenward.AuditEntry
	for _, a := range e.audit {
		if a.Action == action {
			out = append(out, a)
		}
	}
	return out
}

func (e *monEnv) anomalies(tb testing.TB, all bool) []*monitor.Record {
	tb.Helper()
	var resp struct {
		Anomalies []*monitor.Record `json:"anomalies"`
	}
	path := "/v1/anomalies"
	if all {
		path += "?all=true"
	}
	if err := json.Unmarshal(e.mustDo(tb, e.admin, "GET", path, nil, 200), &resp); err != nil {
		tb.Fatal(err)
	}
	return resp.Anomalies
}

// TestMonitorAuthorizationMatrix covers every monitoring route with the
// principals of the core matrix.
func TestMonitorAuthorizationMatrix(t *testing.T) {
	e := mustServeMonitor(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "staging", "dev"}}, 201)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "other", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "sk_live_0123456789"}, 200)
	tokens := map[string]string{"admin": e.admin}
	_, tokens["reader"] = e.mustToken(t, e.admin, "reader", "", "read:payments/prod/*")
	_, tokens["auditor"] = e.mustToken(t, e.admin, "auditor", "", "audit:*/*/*")
	_, tokens["other"] = e.mustToken(t, e.admin, "other", "", "admin:other/*/*")
	revokedID, revoked := e.mustToken(t, e.admin, "revoked", "", "admin:*/*/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)
	tokens["revoked"] = revoked
	tokens["none"] = ""
	// An anomaly to acknowledge: the revoked token was just used... later.
	e.do(t, revoked, "GET", "/v1/tokens/self", nil)
	anomalyID := e.anomalies(t, false)[0].ID

	type step struct {
		method, path string
		body         any
		ok           []string
		okStatus     int
	}
	envN := 0
	nextEnv := func() string {
		envN++
		env := fmt.Sprint("e", envN)
		e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs", map[string]any{"name": env}, 201)
		return env
	}
	steps := []step{
		{method: "GET", path: "/v1/anomalies", ok: []string{"admin", "auditor"}, okStatus: 200},
		{method: "POST", path: "/v1/anomalies/" + anomalyID + "/ack", ok: []string{"admin", "auditor"}, okStatus: 200},
		{method: "GET", path: "/v1/report", ok: []string{"admin", "auditor"}, okStatus: 200},
		{method: "GET", path: "/v1/usage/tokens", ok: []string{"admin", "reader", "auditor", "other"}, okStatus: 200},
		{method: "GET", path: "/v1/usage/secrets/payments/prod", ok: []string{"admin", "reader"}, okStatus: 200},
		{method: "POST", path: "/v1/projects/payments/retire", body: map[string]any{"dry_run": true}, ok: []string{"admin"}, okStatus: 200},
		{method: "POST", path: "/v1/projects/other/envs/prod/retire", body: map[string]any{"dry_run": true}, ok: []string{"admin", "other"}, okStatus: 200},
		{method: "POST", path: "/v1/projects/payments/envs/ENV/restore", ok: []string{"admin"}, okStatus: 200},
		{method: "GET", path: "/v1/archives", ok: []string{"admin", "reader", "auditor", "other"}, okStatus: 200},
		{method: "GET", path: "/v1/events/stream", ok: []string{"admin", "reader", "auditor", "other"}, okStatus: 200},
	}
	for _, st := range steps {
		for _, who := range []string{"admin", "reader", "auditor", "other", "revoked", "none"} {
			want := 403
			for _, ok := range st.ok {
				if ok == who {
					want = st.okStatus
				}
			}
			if who == "revoked" || who == "none" {
				want = 401
			}
			path := st.path
			if strings.Contains(path, "/ENV/") {
				// Each restore needs a freshly retired environment.
				env := nextEnv()
				e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/"+env+"/retire", map[string]any{}, 200)
				path = strings.Replace(path, "ENV", env, 1)
			}
			t.Run(st.method+" "+path+" as "+who, func(t *testing.T) {
				if strings.HasSuffix(path, "/stream") {
					got := streamStatus(t, e.env, tokens[who])
					if got != want {
						t.Fatalf("got %d; want %d", got, want)
					}
					return
				}
				got, b := e.do(t, tokens[who], st.method, path, st.body)
				if got != want {
					t.Fatalf("got %d %s; want %d", got, b, want)
				}
			})
		}
	}
	// Every monitoring route is in this matrix; report-leak (public) has
	// its own test.
	if got, want := len(steps)+1, len(e.api.Routes())-e.api.CoreRouteCount()-otherFeatureRoutes(e.api); got != want {
		t.Fatalf("matrix covers %d monitoring routes; the server has %d", got, want)
	}
}

// otherFeatureRoutes counts the routes of features other than monitoring.
func otherFeatureRoutes(api *httpapi.Server) int {
	n := 0
	for _, r := range api.Routes() {
		p := strings.SplitN(r, " ", 2)[1]
		switch {
		case strings.HasPrefix(p, "/v1/anomalies"), p == "/v1/report", p == "/v1/tokens/report-leak", strings.HasPrefix(p, "/v1/usage/"),
			strings.HasSuffix(p, "/retire"), strings.HasSuffix(p, "/restore"), p == "/v1/archives", p == "/v1/events/stream":
		default:
			n++
		}
	}
	return n - api.CoreRouteCount()
}

// streamStatus opens the event stream and returns its status.
func streamStatus(tb testing.TB, e *env, token string) int {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := e.request(tb, ctx, token, "GET", "/v1/events/stream", nil)
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestRevokedTokenUseAlerts: a revoked token presented once gives an
// anomaly listed at once and a signed alert at the receiver.
func TestRevokedTokenUseAlerts(t *testing.T) {
	e := mustServeMonitor(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "sk_live_SHOULD_NOT_LEAK_1"}, 200)
	id, tok := e.mustToken(t, e.admin, "deploy", "", "read:payments/prod/*")
	e.mustDo(t, tok, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 200)
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+id+"/revoke", nil, 200)
	e.clock.Add(time.Second)

	e.mustDo(t, tok, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 401)
	list := e.anomalies(t, false)
	if len(list) != 1 || list[0].Rule != monitor.RuleRevokedUse || list[0].TokenID != id {
		t.Fatalf("got anomalies %+v; want one %s for %s", list, monitor.RuleRevokedUse, id)
	}
	bodies := e.alerts.wait(t, 1)
	var p monitor.AlertPayload
	if err := json.Unmarshal(bodies[0], &p); err != nil || p.Anomaly.Rule != monitor.RuleRevokedUse || p.Anomaly.TokenID != id {
		t.Fatalf("got alert %s (%v); want %s for %s", bodies[0], err, monitor.RuleRevokedUse, id)
	}
	if e.alerts.bad != 0 {
		t.Fatalf("got %d deliveries with bad signatures; want 0", e.alerts.bad)
	}
	// Acknowledged, it leaves the open list but stays in the full one.
	e.mustDo(t, e.admin, "POST", "/v1/anomalies/"+list[0].ID+"/ack", nil, 200)
	if got := e.anomalies(t, false); len(got) != 0 {
		t.Fatalf("got %d open anomalies after ack; want 0", len(got))
	}
	if got := e.anomalies(t, true); len(got) != 1 || got[0].AckedAt.IsZero() {
		t.Fatalf("got %+v; want the acknowledged anomaly", got)
	}
	for _, bad := range []string{"anm_zz", "tok_123", "anm_0123456789abcdeg"} {
		if got, b := e.do(t, e.admin, "POST", "/v1/anomalies/"+bad+"/ack", nil); got != 400 {
			t.Errorf("ack %s: got %d %s; want 400", bad, got, b)
		}
	}
	if got, _ := e.do(t, e.admin, "POST", "/v1/anomalies/anm_0123456789abcdef/ack", nil); got != 404 {
		t.Errorf("ack unknown: got %d; want 404", got)
	}
}

// TestRevokedTokenOnEventStream: the event stream audits itself, and a
// revoked token refused there is named like on every other route, so its
// use is the same leak signal (revoked_token_use).
func TestRevokedTokenOnEventStream(t *testing.T) {
	e := mustServeMonitor(t)
	id, tok := e.mustToken(t, e.admin, "watcher", "", "read:*/*/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+id+"/revoke", nil, 200)
	if got := streamStatus(t, e.env, tok); got != 401 {
		t.Fatalf("got %d; want 401", got)
	}
	entries := e.entries("events.stream")
	if len(entries) != 1 || entries[0].TokenID != id || entries[0].Status != 401 || entries[0].Outcome != tokenward.OutcomeDenied {
		t.Fatalf("got entries %+v; want one denied 401 naming %s", entries, id)
	}
	list := e.anomalies(t, false)
	if len(list) != 1 || list[0].Rule != monitor.RuleRevokedUse || list[0].TokenID != id {
		t.Fatalf("got anomalies %+v; want one %s for %s", list, monitor.RuleRevokedUse, id)
	}
}

// TestReportLeak: a valid token is revoked at once, the answer is the same
// for known, unknown and malformed tokens, the report is audited and
// suspends (leak_reported), and the route is rate-limited per IP.
func TestReportLeak(t *testing.T) {
	e := mustServeMonitor(t)
	id, tok := e.mustToken(t, e.admin, "leaky", "", "admin:*/*/*")
	unknown, _ := tokenward.NewTokenSecret(tokenward.TokenService)
	var answers []string
	for _, body := range []string{tok, unknown, "not-a-token"} {
		got, b := e.do(t, "", "POST", "/v1/tokens/report-leak", map[string]any{"token": body})
		if got != 202 {
			t.Fatalf("report-leak: got %d %s; want 202", got, b)
		}
		answers = append(answers, string(b))
	}
	if answers[0] != answers[1] || answers[1] != answers[2] {
		t.Fatalf("answers differ: %q", answers)
	}
	e.mustDo(t, tok, "GET", "/v1/tokens/self", nil, 401)
	entries := e.entries(monitor.ActionReportLeak)
	if len(entries) != 3 || entries[0].Resource != "token:"+id || entries[0].Outcome != tokenward.OutcomeAllowed || entries[1].Outcome != tokenward.OutcomeDenied {
		t.Fatalf("got report entries %+v; want one allowed for %s, then denied ones", entries, id)
	}
	found := false
	for _, a := range e.anomalies(t, false) {
		found = found || (a.Rule == monitor.RuleLeakReported && a.TokenID == id)
	}
	if !found {
		t.Fatalf("no %s anomaly for %s", monitor.RuleLeakReported, id)
	}
	if len(e.entries("token.suspend")) != 1 {
		t.Fatalf("got %d token.suspend entries; want 1", len(e.entries("token.suspend")))
	}
	// The token never appears in an entry.
	for _, a := range e.entries(monitor.ActionReportLeak) {
		if b, _ := json.Marshal(a); strings.Contains(string(b), tok) {
			t.Fatalf("audit entry holds the token: %s", b)
		}
	}
	// Rate limit: 10 a minute per IP (3 used above).
	status := 0
	for range 8 {
		status, _ = e.do(t, "", "POST", "/v1/tokens/report-leak", map[string]any{"token": unknown})
	}
	if status != 429 {
		t.Fatalf("11th report in a minute: got %d; want 429", status)
	}
	e.clock.Add(time.Minute)
	if got, _ := e.do(t, "", "POST", "/v1/tokens/report-leak", map[string]any{"token": unknown}); got != 202 {
		t.Fatalf("a minute later: got %d; want 202", got)
	}
	for _, body := range []any{map[string]any{}, map[string]any{"token": strings.Repeat("x", 300)}, map[string]any{"token": "x", "extra": 1}} {
		if got, b := e.do(t, "", "POST", "/v1/tokens/report-leak", body); got != 400 {
			t.Errorf("report-leak %v: got %d %s; want 400", body, got, b)
		}
	}
}

// TestReportLeakLimitPerIPv6Prefix: the public leak-report route's limit
// (10 a minute) counts an IPv6 client by its /64, as the failed-
// authentication limit does: one host holds a whole /64, and took a fresh
// budget per address (and, with 10 000 of them, emptied the limiter's
// table, which then forgets every address).
func TestReportLeakLimitPerIPv6Prefix(t *testing.T) {
	e := mustServeMonitor(t)
	e.api.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	unknown, err := tokenward.NewTokenSecret(tokenward.TokenService)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"token": unknown})
	report := func(from string) int {
		req, err := http.NewRequest("POST", e.srv.URL+"/v1/tokens/report-leak", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 10 {
		if got := report(fmt.Sprintf("2001:db8:1:2::%x", i+1)); got != 202 {
			t.Fatalf("report %d from its own address of one /64: got %d; want 202", i+1, got)
		}
	}
	for _, tc := range []struct {
		from string
		want int
	}{
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", 429}, // the same /64: its budget is spent
		{"2001:db8:1:3::1", 202},                  // the next /64 has its own
		{"198.51.100.7", 202},                     // and an IPv4 address its own
	} {
		if got := report(tc.from); got != tc.want {
			t.Errorf("report from %s: got %d; want %d", tc.from, got, tc.want)
		}
	}
}

// TestRetireAndRestore: tokens only inside the scope are revoked, others
// narrowed, untouched ones kept; secrets archived (hidden) then restored;
// the whole of it audited and announced.
func TestRetireAndRestore(t *testing.T) {
	e := mustServeMonitor(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "staging"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/staging/STRIPE_KEY", map[string]any{"value": "sk_test_SHOULD_NOT_LEAK_2"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/staging/DB_PASS", map[string]any{"value": "db_SHOULD_NOT_LEAK_3"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "sk_live_SHOULD_NOT_LEAK_4"}, 200)
	onlyID, onlyTok := e.mustToken(t, e.admin, "staging-ci", "", "read:payments/staging/*", "write:payments/staging/DB_*")
	bothID, bothTok := e.mustToken(t, e.admin, "both", "", "read:payments/staging/*", "read:payments/prod/*")
	wideID, _ := e.mustToken(t, e.admin, "wide", "", "read:payments/*/*")
	_, scoped := e.mustToken(t, e.admin, "staging-admin", "", "admin:payments/staging/*")

	// Only admin over the scope may retire it.
	e.mustDo(t, bothTok, "POST", "/v1/projects/payments/envs/staging/retire", map[string]any{"dry_run": true}, 403)
	b := e.mustDo(t, scoped, "POST", "/v1/projects/payments/envs/staging/retire", map[string]any{"dry_run": true, "retention": "7d"}, 200)
	var plan monitor.RetirePlan
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	ids := func(ts []monitor.PlanToken) string {
		var s []string
		for _, t := range ts {
			s = append(s, t.Name)
		}
		sort.Strings(s)
		return strings.Join(s, ",")
	}
	if got := ids(plan.Revoke); got != "staging-admin,staging-ci" {
		t.Errorf("revoke: got %s; want staging-admin,staging-ci", got)
	}
	if len(plan.Narrow) != 1 || plan.Narrow[0].ID != bothID || strings.Join(plan.Narrow[0].Keep, " ") != "read:payments/prod/*" {
		t.Errorf("narrow: got %+v; want both keeping read:payments/prod/*", plan.Narrow)
	}
	if got := strings.Join(plan.Secrets, " "); got != "payments/staging/DB_PASS payments/staging/STRIPE_KEY" {
		t.Errorf("secrets: got %s", got)
	}
	if want := e.clock.Now().Add(7 * 24 * time.Hour); !plan.PurgeAt.Equal(want) || plan.Done {
		t.Errorf("got purge_at %s done %v; want %s, false", plan.PurgeAt, plan.Done, want)
	}
	// The dry run changed nothing.
	e.mustDo(t, onlyTok, "GET", "/v1/secrets/payments/staging/STRIPE_KEY", nil, 200)

	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/retire", map[string]any{"retention": "7d"}, 200)
	e.mustDo(t, onlyTok, "GET", "/v1/tokens/self", nil, 401)
	e.mustDo(t, bothTok, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 200)
	e.mustDo(t, bothTok, "GET", "/v1/secrets/payments/staging/STRIPE_KEY", nil, 403)
	var wide tokenward.Token
	json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/tokens/"+wideID, nil, 200), &wide)
	if !wide.RevokedAt.IsZero() || len(wide.Grants) != 1 {
		t.Errorf("wide token: got %+v; want untouched", wide)
	}
	e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/staging/STRIPE_KEY", nil, 404)
	var list struct{ Secrets []*tokenward.Secret }
	json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/staging", nil, 200), &list)
	if len(list.Secrets) != 0 {
		t.Errorf("got %d listed secrets after retirement; want 0", len(list.Secrets))
	}
	// Retiring twice conflicts.
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/retire", map[string]any{}, 409)
	// Audited and announced.
	if n := len(e.entries("secret.archive")); n != 1 {
		t.Errorf("got %d secret.archive entries; want 1", n)
	}
	revokes := 0
	for _, a := range e.entries("token.revoke") {
		if a.Resource == "token:"+onlyID && strings.Contains(a.Reason, "retired payments/staging") {
			revokes++
		}
	}
	if revokes != 1 || len(e.entries("token.narrow")) != 1 {
		t.Errorf("got %d retirement revocations of %s and %d narrowings; want 1 and 1", revokes, onlyID, len(e.entries("token.narrow")))
	}

	// Restore within retention.
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/restore", nil, 200)
	var got api.SecretResponse
	json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/staging/STRIPE_KEY", nil, 200), &got)
	if got.Value != "sk_test_SHOULD_NOT_LEAK_2" || got.Version != 1 {
		t.Errorf("restored: got version %d; want the original value at version 1", got.Version)
	}
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/restore", nil, 404)

	// Retired again, then purged once the retention passes, but not while
	// a purge hook (what depends on the archive) fails: the archive is
	// kept, the environment stays retired, and the next run tries again.
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/retire", map[string]any{"retention": "1d"}, 200)
	e.clock.Add(25 * time.Hour)
	var hooked []string
	e.core.Monitoring.PurgeHooks = []func(ctx context.Context, project, env string) error{func(_ context.Context, project, env string) error {
		hooked = append(hooked, project+"/"+env)
		if len(hooked) == 1 {
			return tokenward.Errorf(tokenward.EUNAVAILABLE, "a lease of payments/staging/db is still revoking")
		}
		return nil
	}}
	res, err := e.core.RunHygiene(context.Background())
	if err != nil || res.Purged != 0 || res.PurgeHeld != 1 {
		t.Fatalf("hygiene with a failing purge hook: got %+v, %v; want the purge held", res, err)
	}
	if err := e.core.RefuseRetired(context.Background(), "payments", "staging"); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Fatalf("payments/staging after a held purge: got %v; want still retired", err)
	}
	res, err = e.core.RunHygiene(context.Background())
	if err != nil || res.Purged != 1 || res.PurgeHeld != 0 || strings.Join(hooked, " ") != "payments/staging payments/staging" {
		t.Fatalf("hygiene: got %+v, %v (hooks ran for %q); want 1 purge, the hook run again first", res, err, hooked)
	}
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/restore", nil, 404)
	if len(e.entries("env.purge")) != 1 {
		t.Errorf("got %d env.purge entries; want 1", len(e.entries("env.purge")))
	}

	// Events: created (3), retired (2 + 2), revoked tokens, narrowed-only not.
	want := map[monitor.EventType]int{monitor.EventSecretCreated: 3, monitor.EventSecretRetired: 4, monitor.EventTokenRevoked: 2}
	bodies := e.events.wait(t, 9)
	gotTypes := map[monitor.EventType]int{}
	for _, b := range bodies {
		var ev monitor.Event
		json.Unmarshal(b, &ev)
		gotTypes[ev.Type]++
	}
	for typ, n := range want {
		if gotTypes[typ] != n {
			t.Errorf("got %d %s events; want %d (all: %v)", gotTypes[typ], typ, n, gotTypes)
		}
	}
}

// TestHygienePrunesDeadTokens: a token revoked or expired longer ago than
// the token retention is deleted by the hygiene job (one audit entry says
// how many); a recent or live one stays; the audit trail keeps its
// entries.
func TestHygienePrunesDeadTokens(t *testing.T) {
	e := mustServeMonitor(t)
	ctx := context.Background()
	e.mg.TokenRetention = 7 * 24 * time.Hour
	expiredID, expired := e.mustToken(t, e.admin, "short", "1h", "read:*/*/*")
	revokedID, _ := e.mustToken(t, e.admin, "revoked", "", "read:*/*/*")
	liveID, _ := e.mustToken(t, e.admin, "live", "", "read:*/*/*")
	e.mustDo(t, expired, "GET", "/v1/tokens/self", nil, 200)
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)

	e.clock.Add(6 * 24 * time.Hour)
	if res, err := e.core.RunHygiene(ctx); err != nil || res.TokensPruned != 0 {
		t.Fatalf("hygiene within the retention: got %+v, %v; want nothing pruned", res, err)
	}
	e.clock.Add(2 * 24 * time.Hour)
	res, err := e.core.RunHygiene(ctx)
	if err != nil || res.TokensPruned != 2 {
		t.Fatalf("hygiene past the retention: got %+v, %v; want 2 pruned", res, err)
	}
	for _, id := range []string{expiredID, revokedID} {
		e.mustDo(t, e.admin, "GET", "/v1/tokens/"+id, nil, 404)
	}
	e.mustDo(t, e.admin, "GET", "/v1/tokens/"+liveID, nil, 200)
	e.mustDo(t, expired, "GET", "/v1/tokens/self", nil, 401)
	pruned := e.entries("token.prune")
	if len(pruned) != 1 || pruned[0].Meta["tokens"] != "2" {
		t.Fatalf("token.prune entries: got %+v; want one for 2 tokens", pruned)
	}
	used := 0
	e.mu.Lock()
	for _, a := range e.audit {
		if a.TokenID == expiredID {
			used++
		}
	}
	e.mu.Unlock()
	if used == 0 {
		t.Fatal("the pruned token's audit entries are gone")
	}
	if res, err := e.core.RunHygiene(ctx); err != nil || res.TokensPruned != 0 || len(e.entries("token.prune")) != 1 {
		t.Fatalf("hygiene again: got %+v, %v; want nothing pruned, nothing audited", res, err)
	}
}

// TestRetireHoldsTheScope: a retirement holds its scope (no lease made)
// from before its hooks revoke what they end until its archive is
// committed, and lets go after, whatever the outcome.
func TestRetireHoldsTheScope(t *testing.T) {
	e := mustServeMonitor(t)
	ctx := context.Background()
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "staging"}}, 201)
	var log []string
	e.mg.HoldScope = func(_ context.Context, project, env string) (func(), error) {
		log = append(log, "hold "+project+"/"+env)
		return func() {
			retired := tokenward.ErrorCode(e.core.RefuseRetired(ctx, "payments", "staging")) == tokenward.ECONFLICT
			log = append(log, fmt.Sprintf("release (archived: %v)", retired))
		}, nil
	}
	e.mg.RetireHooks = []core.RetireHook{func(_ context.Context, project, env string, dryRun bool) ([]string, error) {
		if !dryRun {
			log = append(log, "hook")
		}
		return nil, nil
	}}
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/retire", map[string]any{"dry_run": true}, 200)
	if len(log) != 0 {
		t.Fatalf("a dry run: got %q; want no hold", log)
	}
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/retire", map[string]any{}, 200)
	if got, want := strings.Join(log, ", "), "hold payments/staging, hook, release (archived: true)"; got != want {
		t.Fatalf("retire: got %q; want %q", got, want)
	}
}

// TestEventsStream: a stream receives the secret updates its token covers
// and nothing else.
func TestEventsStream(t *testing.T) {
	e := mustServeMonitor(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	_, reader := e.mustToken(t, e.admin, "reader", "", "read:payments/prod/*")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+reader)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("got %d %s; want 200 application/x-ndjson", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/dev/HIDDEN", map[string]any{"value": "v_SHOULD_NOT_LEAK_5"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "v_SHOULD_NOT_LEAK_6"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "v_SHOULD_NOT_LEAK_7"}, 200)
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 2 && sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if strings.Contains(sc.Text(), "SHOULD_NOT_LEAK") {
			t.Fatalf("event holds a value: %s", sc.Text())
		}
		var ev monitor.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s v%d", ev.Type, ev.Resource, ev.Version))
	}
	want := "secret.created payments/prod/STRIPE_KEY v1|secret.updated payments/prod/STRIPE_KEY v2"
	if strings.Join(got, "|") != want {
		t.Fatalf("got %q; want %q", strings.Join(got, "|"), want)
	}
}

// TestNoSecretInMonitoring: no secret value or token in anomalies, alerts,
// events, the report, usage or the audit entries the monitor wrote.
func TestNoSecretInMonitoring(t *testing.T) {
	e := mustServeMonitor(t)
	const value = "sk_live_SHOULD_NOT_LEAK_8"
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "staging"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": value, "expires_at": e.clock.Now().Add(48 * time.Hour)}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/staging/STRIPE_KEY", map[string]any{"value": value}, 200)
	id, tok := e.mustToken(t, e.admin, "deploy", "", "read:payments/*/*")
	e.mustDo(t, tok, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 200)
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+id+"/revoke", nil, 200)
	e.clock.Add(time.Second)
	e.mustDo(t, tok, "GET", "/v1/values/payments/prod", nil, 401)
	_, leaked := e.mustToken(t, e.admin, "leaked", "", "read:payments/prod/*")
	e.mustDo(t, "", "POST", "/v1/tokens/report-leak", map[string]any{"token": leaked}, 202)
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/staging/retire", map[string]any{}, 200)
	if _, err := e.core.RunHygiene(context.Background()); err != nil {
		t.Fatal(err)
	}
	alerts := e.alerts.wait(t, 3) // revoked use, leak, expiring secret
	events := e.events.wait(t, 5)
	var all []string
	for _, b := range append(alerts, events...) {
		all = append(all, string(b))
	}
	for _, path := range []string{"/v1/anomalies?all=true", "/v1/report", "/v1/usage/tokens", "/v1/usage/secrets/payments/prod", "/v1/archives"} {
		all = append(all, string(e.mustDo(t, e.admin, "GET", path, nil, 200)))
	}
	e.mu.Lock()
	for _, a := range e.audit {
		b, _ := json.Marshal(a)
		all = append(all, string(b))
	}
	e.mu.Unlock()
	snap, err := e.mg.Monitor.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, string(snap))
	for _, s := range all {
		for _, secret := range []string{value, tok, leaked, e.admin, hookSecret} {
			if strings.Contains(s, secret) {
				t.Fatalf("found a secret in monitoring output: %.200s", s)
			}
		}
	}
	if !strings.Contains(strings.Join(all, "\n"), "payments/prod/STRIPE_KEY") {
		t.Fatal("the outputs name no secret at all; the test checks nothing")
	}
}

// TestHygieneJob: with an injected clock, a token unused for 30 days is
// notified (owner alerted), revoked after the notice period when the policy
// says so (audited), and expiring tokens alert once a day.
func TestHygieneJob(t *testing.T) {
	for _, revoke := range []bool{false, true} {
		t.Run(fmt.Sprint("revoke=", revoke), func(t *testing.T) {
			e := mustServeMonitor(t)
			e.mg.StalePolicy = monitor.StalePolicy{NoticePeriod: 14 * 24 * time.Hour, Revoke: revoke}
			idleID, idle := e.mustToken(t, e.admin, "idle", "", "read:*/*/*")
			e.clock.Add(31 * 24 * time.Hour)
			expID, _ := e.mustToken(t, e.admin, "expiring", "240h", "read:*/*/*")
			e.core.Close() // writes the admin token's last use (at the test clock's time)

			res, err := e.core.RunHygiene(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Notified != 1 || res.Revoked != 0 || res.ExpiryAlerts != 1 {
				t.Fatalf("first run: got %+v; want 1 notified, 1 expiry alert", res)
			}
			rules := map[string]string{}
			for _, b := range e.alerts.wait(t, 2) {
				var p monitor.AlertPayload
				json.Unmarshal(b, &p)
				rules[string(p.Anomaly.Rule)] = p.Anomaly.TokenID
			}
			if rules["stale_token"] != idleID || rules["expiring"] != expID {
				t.Fatalf("got alerts %v; want stale_token for %s and expiring for %s", rules, idleID, expID)
			}
			// The report lists it as stale and its unused grant as over-privilege.
			var rep0 monitor.Report
			json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/report", nil, 200), &rep0)
			staleNames, over := "", ""
			for _, st := range rep0.StaleTokens {
				staleNames += st.Name + " "
			}
			for _, op := range rep0.OverPrivileged {
				over += op.Name + ":" + strings.Join(op.Unused, ",") + " "
			}
			if !strings.Contains(staleNames, "idle ") || !strings.Contains(over, "idle:read:*/*/* ") {
				t.Fatalf("got stale %q, over-privileged %q; want idle in both (read:*/*/* unused)", staleNames, over)
			}
			// The same day again: nothing new.
			if res, _ := e.core.RunHygiene(context.Background()); res.Notified != 0 || res.ExpiryAlerts != 0 {
				t.Fatalf("second run: got %+v; want nothing new", res)
			}
			// Nor on a new leader (another server, or this one restarted):
			// what was alerted is in the store, not in the old one's memory.
			mg := e.mg
			e.core.Monitoring = &core.Monitoring{Store: mg.Store, Monitor: mg.Monitor, Alerter: mg.Alerter, Events: mg.Events, Record: mg.Record,
				ReportOptions: mg.ReportOptions, StalePolicy: mg.StalePolicy, Retention: mg.Retention, TokenRetention: mg.TokenRetention}
			if res, _ := e.core.RunHygiene(context.Background()); res.ExpiryAlerts != 0 {
				t.Fatalf("a new leader's run the same day: got %+v; want no expiry alert again", res)
			}
			e.core.Monitoring = mg
			e.clock.Add(15 * 24 * time.Hour)
			res, err = e.core.RunHygiene(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wantRevoked := map[bool]int{false: 0, true: 1}[revoke]
			if res.Revoked != wantRevoked {
				t.Fatalf("after the notice period: got %+v; want %d revoked", res, wantRevoked)
			}
			got, _ := e.do(t, idle, "GET", "/v1/tokens/self", nil)
			if want := map[bool]int{false: 200, true: 401}[revoke]; got != want {
				t.Fatalf("idle token: got %d; want %d", got, want)
			}
			stale := 0
			for _, a := range e.entries("token.revoke") {
				if a.Resource == "token:"+idleID && strings.HasPrefix(a.Reason, "stale") {
					stale++
				}
			}
			if stale != wantRevoked {
				t.Fatalf("got %d audited stale revocations; want %d", stale, wantRevoked)
			}
			// The report lists what the job saw.
			var rep monitor.Report
			json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/report", nil, 200), &rep)
			if rep.Windows.StaleDays != 30 || rep.Windows.ExpiryDays != 14 {
				t.Fatalf("got windows %+v; want 30 and 14 days", rep.Windows)
			}
		})
	}
}

// TestEnvReadCountsPerSecret: run/export read a whole environment; each
// secret the token could read there counts one read.
func TestEnvReadCountsPerSecret(t *testing.T) {
	e := mustServeMonitor(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	for _, n := range []string{"STRIPE_KEY", "DB_PASS"} {
		e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/"+n, map[string]any{"value": "v"}, 200)
	}
	_, tok := e.mustToken(t, e.admin, "ci", "", "read:payments/prod/STRIPE_*")
	e.mustDo(t, tok, "GET", "/v1/values/payments/prod", nil, 200)
	var resp struct {
		Secrets map[string]monitor.SecretUsage `json:"secrets"`
	}
	json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/usage/secrets/payments/prod", nil, 200), &resp)
	if u, ok := resp.Secrets["STRIPE_KEY"]; !ok || len(u.Daily) != 1 || u.Daily[0].Count != 1 {
		t.Errorf("STRIPE_KEY: got %+v; want one read", resp.Secrets["STRIPE_KEY"])
	}
	if _, ok := resp.Secrets["DB_PASS"]; ok {
		t.Errorf("DB_PASS: got a read; the token could not read it")
	}
}

// TestRetireProject: a project retires every environment not retired
// before, with one plan; its tokens go, wider ones stay.
func TestRetireProject(t *testing.T) {
	e := mustServeMonitor(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "staging", "dev"}}, 201)
	for _, env := range []string{"prod", "staging", "dev"} {
		e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/"+env+"/KEY", map[string]any{"value": "v"}, 200)
	}
	e.mustDo(t, e.admin, "POST", "/v1/projects/payments/envs/dev/retire", map[string]any{}, 200)
	_, proj := e.mustToken(t, e.admin, "proj", "", "read:payments/*/*")
	_, wide := e.mustToken(t, e.admin, "wide", "", "read:*/*/*")
	var plan monitor.RetirePlan
	json.Unmarshal(e.mustDo(t, e.admin, "POST", "/v1/projects/payments/retire", map[string]any{}, 200), &plan)
	if got := strings.Join(plan.Envs, ","); got != "prod,staging" || len(plan.Secrets) != 2 || len(plan.Revoke) != 1 || plan.Revoke[0].Name != "proj" || !plan.Done {
		t.Fatalf("got plan %+v; want prod,staging archived and proj revoked", plan)
	}
	e.mustDo(t, proj, "GET", "/v1/tokens/self", nil, 401)
	e.mustDo(t, wide, "GET", "/v1/tokens/self", nil, 200)
	var arch struct{ Archives []monitor.Archive }
	json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/archives", nil, 200), &arch)
	if len(arch.Archives) != 3 {
		t.Fatalf("got %d archives; want 3", len(arch.Archives))
	}
}

// TestExpiredTokenUse: an expired token presented once is a leak signal
// too, detected on that request.
func TestExpiredTokenUse(t *testing.T) {
	e := mustServeMonitor(t)
	id, tok := e.mustToken(t, e.admin, "short", "1h", "read:*/*/*")
	e.mustDo(t, tok, "GET", "/v1/tokens/self", nil, 200)
	e.clock.Add(2 * time.Hour)
	e.mustDo(t, tok, "GET", "/v1/tokens/self", nil, 401)
	list := e.anomalies(t, false)
	if len(list) != 1 || list[0].Rule != monitor.RuleExpiredUse || list[0].TokenID != id || list[0].Suspend {
		t.Fatalf("got %+v; want one %s for %s", list, monitor.RuleExpiredUse, id)
	}
	selfs := e.entries("token.self")
	if last := selfs[len(selfs)-1]; last.Status != 401 || len(list[0].Evidence) != 1 || list[0].Evidence[0].Seq != last.Seq {
		t.Fatalf("got evidence %+v; want the refused request (seq %d)", list[0].Evidence, last.Seq)
	}
	var p monitor.AlertPayload
	if err := json.Unmarshal(e.alerts.wait(t, 1)[0], &p); err != nil || p.Anomaly.Rule != monitor.RuleExpiredUse {
		t.Fatalf("got alert %+v (%v); want %s", p, err, monitor.RuleExpiredUse)
	}
}

// TestJITSecondSourceSuspends: a just-in-time token (OIDC login) used from
// a second network is suspended at once by the default policy: revoked,
// audited, announced, alerted. The second network is a second loopback
// /24 (127.0.1.0/24), a real source address.
func TestJITSecondSourceSuspends(t *testing.T) {
	e := mustServeMonitor(t)
	issuer := oidctest.NewIssuer(t)
	e.core.OIDC = &core.OIDC{Store: e.core.Store.(core.BindingStore), Verifier: oidc.NewVerifier(), MaxTTL: time.Hour}
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "sk_live_jit"}, 200)
	oe := &oidcEnv{env: e.env, issuer: issuer}
	e.mustDo(t, e.admin, "POST", "/v1/bindings", oe.bindingBody("deploy-prod", "read:payments/prod/*"), 201)
	jwt := issuer.Sign(t, oidctest.GitHubClaims(issuer.URL, "tokenward", e.clock.Now()))
	var lr api.CreateTokenResponse
	if err := json.Unmarshal(e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{"binding": "deploy-prod", "jwt": jwt}, 200), &lr); err != nil {
		t.Fatal(err)
	}
	e.mustDo(t, lr.Secret, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 200)

	// The same job's token, from another network.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, 5)}}).DialContext}}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/secrets/payments/prod/STRIPE_KEY", nil)
	req.Header.Set("Authorization", "Bearer "+lr.Secret)
	resp, err := other.Do(req)
	if err != nil {
		t.Skipf("cannot use 127.0.1.5 as a source address here: %v", err)
	}
	resp.Body.Close()

	e.mustDo(t, lr.Secret, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 401)
	var suspended *monitor.Record
	for _, a := range e.anomalies(t, false) {
		if a.Rule == monitor.RuleJITSecondSource {
			suspended = a
		}
	}
	if suspended == nil || suspended.TokenID != lr.Token.ID || !suspended.Suspend || suspended.SourceIP != "127.0.1.5" {
		t.Fatalf("got %+v; want a suspending %s for %s from 127.0.1.5", suspended, monitor.RuleJITSecondSource, lr.Token.ID)
	}
	if s := e.entries("token.suspend"); len(s) != 1 || s[0].Resource != "token:"+lr.Token.ID {
		t.Fatalf("got suspend entries %+v; want one for %s", s, lr.Token.ID)
	}
	found := false
	for _, b := range e.events.wait(t, 2) { // secret.created, then token.suspended
		var ev monitor.Event
		json.Unmarshal(b, &ev)
		found = found || (ev.Type == monitor.EventTokenSuspended && ev.Resource == "token:"+lr.Token.ID && ev.Reason == string(monitor.RuleJITSecondSource))
	}
	if !found {
		t.Fatal("no token.suspended event")
	}
}

// TestReportOverdueRotation: with rotation wired, the report lists secrets
// past their rotation due date (from the rotation policies).
func TestReportOverdueRotation(t *testing.T) {
	e := mustServeMonitor(t)
	db := e.core.Store.(*sqlite.DB)
	e.core.Rotation = &core.Rotation{Machine: rotate.NewMachine(db.Rotations(), nil, nil)}
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/OLD_KEY", map[string]any{"value": "v"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/NEW_KEY", map[string]any{"value": "v"}, 200)
	now := e.clock.Now()
	for _, p := range []*rotate.Policy{
		{Path: "payments/prod/OLD_KEY", Every: 30 * 24 * time.Hour, Rotator: "random", LastAt: now.Add(-40 * 24 * time.Hour), NextAt: now.Add(-10 * 24 * time.Hour)},
		{Path: "payments/prod/NEW_KEY", Every: 30 * 24 * time.Hour, Rotator: "random", LastAt: now.Add(-1 * 24 * time.Hour), NextAt: now.Add(29 * 24 * time.Hour)},
	} {
		if err := db.Rotations().PutPolicy(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	var rep monitor.Report
	json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/report", nil, 200), &rep)
	if len(rep.OverdueRotations) != 1 || rep.OverdueRotations[0].Secret != "payments/prod/OLD_KEY" || rep.OverdueRotations[0].OverdueDays != 10 {
		t.Fatalf("got overdue %+v; want OLD_KEY, 10 days", rep.OverdueRotations)
	}
}

// TestSlackAlert: a Slack-format hook gets the Slack payload, unsigned.
func TestSlackAlert(t *testing.T) {
	e := mustServeMonitor(t)
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer slack.Close()
	e.mg.Alerter.Hooks = []monitor.Webhook{{URL: slack.URL + "/services/T0/B0/SECRETPATH", Format: monitor.FormatSlack}}
	id, tok := e.mustToken(t, e.admin, "ci", "", "read:*/*/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+id+"/revoke", nil, 200)
	e.mustDo(t, tok, "GET", "/v1/tokens/self", nil, 401)
	select {
	case r := <-got:
		b := <-bodies
		var p struct {
			Text   string            `json:"text"`
			Blocks []json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(b, &p); err != nil || !strings.Contains(p.Text, "revoked token") || !strings.Contains(string(b), string(monitor.RuleRevokedUse)) || len(p.Blocks) == 0 {
			t.Fatalf("got %s (%v); want a Slack payload naming %s", b, err, monitor.RuleRevokedUse)
		}
		if r.Header.Get(webhook.SignatureHeader) != "" || strings.Contains(string(b), tok) {
			t.Fatalf("got a signature header or the token in a Slack alert")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Slack alert")
	}
}

// TestReportExpiryDays: ?expiry_days= widens (or narrows) the report's
// expiry window for one request; a bad value is a 400.
func TestReportExpiryDays(t *testing.T) {
	e := mustServeMonitor(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	for name, in := range map[string]time.Duration{"SOON": 5 * 24 * time.Hour, "LATER": 60 * 24 * time.Hour} {
		e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/"+name, map[string]any{"value": "v", "expires_at": e.clock.Now().Add(in)}, 200)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"payments/prod/SOON"}}, // the server's window: 14 days
		{"?expiry_days=90", []string{"payments/prod/SOON", "payments/prod/LATER"}},
		{"?expiry_days=1", nil},
	} {
		var rep monitor.Report
		json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/report"+tc.query, nil, 200), &rep)
		var got []string
		for _, x := range rep.Expiring {
			if x.Kind == "secret" {
				got = append(got, x.ID)
			}
		}
		sort.Strings(got)
		want := slices.Clone(tc.want)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("report%s: got expiring %v; want %v", tc.query, got, want)
		}
	}
	for _, bad := range []string{"0", "367", "x", "-1"} {
		e.mustDo(t, e.admin, "GET", "/v1/report?expiry_days="+bad, nil, 400)
	}
}
