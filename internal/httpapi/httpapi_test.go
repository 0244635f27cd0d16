package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
	"gopkg.in/yaml.v3"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

type env struct {
	srv   *httptest.Server
	api   *httpapi.Server
	core  *core.Core
	clock *clock
	admin string
}

// MustServe starts a server on a fresh SQLite store, initialised, with the
// admin token in env.admin.
func MustServe(tb testing.TB) *env {
	tb.Helper()
	c, clk, admin := mustCore(tb)
	api := httpapi.NewServer(c, nil)
	srv := httptest.NewServer(api)
	tb.Cleanup(srv.Close)
	return &env{srv: srv, api: api, core: c, clock: clk, admin: admin}
}

// mustCore opens a core on a fresh SQLite store, initialised, on a test
// clock, and returns it with the clock and the admin token.
func mustCore(tb testing.TB) (*core.Core, *clock, string) {
	tb.Helper()
	return mustCoreOn(tb, func(s tokenward.Store) tokenward.Store { return s })
}

// mustCoreOn is mustCore with the core on wrap(the store): a test's
// wrapper sees or changes what the core asks of it.
func mustCoreOn(tb testing.TB, wrap func(tokenward.Store) tokenward.Store) (*core.Core, *clock, string) {
	tb.Helper()
	db := sqlite.NewDB(filepath.Join(tb.TempDir(), "tokenward.db"))
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	key := seal.NewKey()
	admin, err := core.Init(context.Background(), db, key, clk.Now())
	if err != nil {
		tb.Fatal(err)
	}
	c, err := core.New(context.Background(), wrap(db), key)
	if err != nil {
		tb.Fatal(err)
	}
	c.Now = clk.Now
	return c, clk, admin
}

// do sends a request with an optional JSON body and returns status and body.
func (e *env) do(tb testing.TB, token, method, path string, body any) (int, []byte) {
	tb.Helper()
	return readAnswer(e.request(tb, context.Background(), token, method, path, body))
}

// send sends a raw body of contentType and returns status and body.
func (e *env) send(tb testing.TB, token, method, path, contentType string, body io.Reader) (int, []byte) {
	tb.Helper()
	return readAnswer(e.bodyRequest(tb, context.Background(), token, method, path, contentType, body))
}

// request sends a request with an optional JSON body and returns the
// response, whose body the caller closes.
func (e *env) request(tb testing.TB, ctx context.Context, token, method, path string, body any) *http.Response {
	tb.Helper()
	if body == nil {
		return e.bodyRequest(tb, ctx, token, method, path, "", nil)
	}
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return e.bodyRequest(tb, ctx, token, method, path, "application/json", bytes.NewReader(b))
}

// bodyRequest is request with a raw body of contentType.
func (e *env) bodyRequest(tb testing.TB, ctx context.Context, token, method, path, contentType string, body io.Reader) *http.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}

func readAnswer(resp *http.Response) (int, []byte) {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) mustDo(tb testing.TB, token, method, path string, body any, want int) []byte {
	tb.Helper()
	got, b := e.do(tb, token, method, path, body)
	if got != want {
		tb.Fatalf("%s %s: got %d %s; want %d", method, path, got, b, want)
	}
	return b
}

func (e *env) mustToken(tb testing.TB, creator, name string, ttl string, grants ...string) (id, secret string) {
	tb.Helper()
	b := e.mustDo(tb, creator, "POST", "/v1/tokens", map[string]any{"name": name, "grants": grants, "ttl": ttl}, 201)
	var resp api.CreateTokenResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		tb.Fatal(err)
	}
	return resp.Token.ID, resp.Secret
}

// TestOpenAPIMatchesRoutes fails when a route is missing from the OpenAPI
// document, or the document names a route the server does not have.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := MustServe(t)
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(httpapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("got openapi %q; want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := e.api.Routes()
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("OpenAPI and routes differ.\ndocumented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
	// The document is served too.
	if got, b := e.do(t, "", "GET", "/v1/openapi.yaml", nil); got != 200 || !bytes.Equal(b, httpapi.OpenAPI()) {
		t.Fatalf("GET /v1/openapi.yaml: got %d", got)
	}
}

// TestAuthorizationMatrix drives every route with tokens that hold the
// needed grant, tokens that do not, and revoked, expired, malformed and
// missing tokens.
func TestAuthorizationMatrix(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "sk_live_0123456789"}, 200)
	tokens := map[string]string{"admin": e.admin}
	ids := map[string]string{}
	ids["reader"], tokens["reader"] = e.mustToken(t, e.admin, "reader", "", "read:payments/prod/*")
	ids["writer"], tokens["writer"] = e.mustToken(t, e.admin, "writer", "", "write:payments/prod/*")
	ids["other"], tokens["other"] = e.mustToken(t, e.admin, "other", "", "admin:other/*/*")
	var revokedID string
	revokedID, tokens["revoked"] = e.mustToken(t, e.admin, "revoked", "", "admin:*/*/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)
	_, tokens["expired"] = e.mustToken(t, e.admin, "expired", "1h", "admin:*/*/*")
	e.clock.Add(2 * time.Hour)
	good := tokens["reader"]
	tokens["garbage"] = "not-a-token"
	tokens["badsum"] = good[:len(good)-1] + string("0123456789"[(strings.IndexByte("0123456789", good[len(good)-1])+1)%10])
	if good[len(good)-1] < '0' || good[len(good)-1] > '9' {
		tokens["badsum"] = good[:len(good)-1] + map[bool]string{true: "a", false: "b"}[good[len(good)-1] != 'a']
	}
	tokens["unknown"], _ = tokenward.NewTokenSecret(tokenward.TokenAdmin)
	tokens["none"] = ""
	unauth := []string{"revoked", "expired", "garbage", "badsum", "unknown", "none"}

	n := 0
	victim := func() string {
		n++
		id, _ := e.mustToken(t, e.admin, fmt.Sprint("victim-", n), "", "read:payments/prod/*")
		return id
	}
	type step struct {
		method, path string
		body         func() any
		path2        func() string // computed path, when set
		ok           []string      // principals that succeed
		okStatus     int
	}
	name := 0
	steps := []step{
		{method: "GET", path: "/v1/projects", ok: []string{"admin", "reader", "writer", "other"}, okStatus: 200},
		{method: "POST", path: "/v1/projects", body: func() any { name++; return map[string]any{"name": fmt.Sprint("p", name)} }, ok: []string{"admin"}, okStatus: 201},
		{method: "GET", path: "/v1/projects/payments", ok: []string{"admin", "reader", "writer"}, okStatus: 200},
		{method: "POST", path: "/v1/projects/payments/envs", body: func() any { name++; return map[string]any{"name": fmt.Sprint("e", name)} }, ok: []string{"admin"}, okStatus: 201},
		{method: "GET", path: "/v1/secrets/payments/prod", ok: []string{"admin", "reader"}, okStatus: 200},
		{method: "GET", path: "/v1/values/payments/prod", ok: []string{"admin", "reader"}, okStatus: 200},
		{method: "GET", path: "/v1/secrets/payments/prod/STRIPE_KEY", ok: []string{"admin", "reader"}, okStatus: 200},
		{method: "PUT", path: "/v1/secrets/payments/prod/STRIPE_KEY", body: func() any { return map[string]any{"value": "sk_live_next_value"} }, ok: []string{"admin", "writer"}, okStatus: 200},
		{method: "GET", path: "/v1/secrets/payments/prod/STRIPE_KEY/versions", ok: []string{"admin", "reader"}, okStatus: 200},
		{method: "POST", path: "/v1/secrets/payments/prod/STRIPE_KEY/rollback", body: func() any { return map[string]any{"to": 1} }, ok: []string{"admin", "writer"}, okStatus: 200},
		{method: "GET", path: "/v1/tokens", ok: []string{"admin", "reader", "writer", "other"}, okStatus: 200},
		{method: "POST", path: "/v1/tokens", body: func() any {
			name++
			return map[string]any{"name": fmt.Sprint("t", name), "grants": []string{"read:payments/prod/STRIPE_KEY"}}
		}, ok: []string{"admin", "reader"}, okStatus: 201},
		{method: "GET", path: "/v1/tokens/self", ok: []string{"admin", "reader", "writer", "other"}, okStatus: 200},
		{method: "GET", path2: func() string { return "/v1/tokens/" + ids["reader"] }, ok: []string{"admin", "reader"}, okStatus: 200},
		{method: "POST", path2: func() string { return "/v1/tokens/" + victim() + "/revoke" }, ok: []string{"admin"}, okStatus: 200},
		{method: "POST", path: "/v1/keys/rotate", ok: []string{"admin"}, okStatus: 200},
	}
	covered := map[string]bool{}
	for _, st := range steps {
		for _, who := range append([]string{"admin", "reader", "writer", "other"}, unauth...) {
			path := st.path
			if st.path2 != nil {
				path = st.path2()
			}
			want := 403
			for _, ok := range st.ok {
				if ok == who {
					want = st.okStatus
				}
			}
			for _, u := range unauth {
				if u == who {
					want = 401
				}
			}
			var body any
			if st.body != nil {
				body = st.body()
			}
			t.Run(st.method+" "+path+" as "+who, func(t *testing.T) {
				got, b := e.do(t, tokens[who], st.method, path, body)
				if got != want {
					t.Fatalf("got %d %s; want %d", got, b, want)
				}
			})
		}
		covered[st.method] = true
	}
	// Every core route but the public ones (health, ready, healthz, readyz,
	// openapi.yaml) is in the matrix.
	if got := len(steps) + 5; got != e.api.CoreRouteCount() {
		t.Fatalf("matrix covers %d routes; the core has %d", got, e.api.CoreRouteCount())
	}
}

func TestBadInput(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": "original"}, 200)
	raw := func(method, path, ctype, body string) (int, string) {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var eb api.ErrorBody
		json.Unmarshal(b, &eb)
		return resp.StatusCode, eb.Error.Code + ": " + eb.Error.Message
	}
	big := strings.Repeat("x", core.DefaultMaxValueSize+1)
	for _, tc := range []struct {
		name, method, path, ctype, body string
		want                            int
		msg                             string
	}{
		{"bad project name", "POST", "/v1/projects", "application/json", `{"name":"Bad_Name"}`, 400, "not a lowercase DNS label"},
		{"bad secret name", "PUT", "/v1/secrets/payments/prod/1BAD", "application/json", `{"value":"v"}`, 400, "environment variable name"},
		{"unknown project", "PUT", "/v1/secrets/nope/prod/KEY", "application/json", `{"value":"v"}`, 404, "project nope not found"},
		{"unknown env", "PUT", "/v1/secrets/payments/dev/KEY", "application/json", `{"value":"v"}`, 404, "environment payments/dev not found"},
		{"malformed json", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{"value":`, 400, "malformed JSON"},
		{"unknown field", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{"value":"v","colour":"red"}`, 400, `unknown field "colour"`},
		{"trailing data", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{"value":"v"} {}`, 400, "data after"},
		{"wrong type", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{"value":5}`, 400, "must be string"},
		{"no value", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{}`, 400, "value is required"},
		{"empty value", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{"value":""}`, 400, "value is empty"},
		{"wrong content type", "PUT", "/v1/secrets/payments/prod/KEY", "text/plain", `{"value":"v"}`, 415, "application/json"},
		{"no content type", "PUT", "/v1/secrets/payments/prod/KEY", "", `{"value":"v"}`, 415, "application/json"},
		{"value too large", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{"value":"` + big + `"}`, 413, "limit is 65536"},
		{"body too large", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{"value":"` + strings.Repeat("x", 7*core.DefaultMaxValueSize) + `"}`, 413, "larger than"},
		{"stale if_version", "PUT", "/v1/secrets/payments/prod/KEY", "application/json", `{"value":"v","if_version":0}`, 409, "at version 1, not 0"},
		{"bad version query", "GET", "/v1/secrets/payments/prod/KEY?version=x", "", "", 400, "whole number"},
		{"missing version", "GET", "/v1/secrets/payments/prod/KEY?version=9", "", "", 404, "no version 9"},
		{"bad grant", "POST", "/v1/tokens", "application/json", `{"name":"x","grants":["read:payments"]}`, 400, "three segments"},
		{"bad ttl", "POST", "/v1/tokens", "application/json", `{"name":"x","grants":["read:*/*/*"],"ttl":"soon"}`, 400, "ttl"},
		{"bad token name", "POST", "/v1/tokens", "application/json", `{"name":"has space","grants":["read:*/*/*"]}`, 400, "token name"},
		{"rollback to 0", "POST", "/v1/secrets/payments/prod/KEY/rollback", "application/json", `{"to":0}`, 400, "version of 1"},
		{"no route", "GET", "/v1/nothing", "", "", 404, "no such route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := raw(tc.method, tc.path, tc.ctype, tc.body)
			if got != tc.want || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %q; want %d containing %q", got, msg, tc.want, tc.msg)
			}
		})
	}
	// Nothing above changed the secret.
	b := e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/prod/KEY", nil, 200)
	var s api.SecretResponse
	json.Unmarshal(b, &s)
	if s.Value != "original" || s.Version != 1 {
		t.Fatalf("got %q at version %d; want original at 1", s.Value, s.Version)
	}
}

// TestTokenDelegation checks that a token cannot mint a broader or
// longer-lived token than itself.
func TestTokenDelegation(t *testing.T) {
	e := MustServe(t)
	_, parent := e.mustToken(t, e.admin, "parent", "2h", "read:payments/prod/*", "write:payments/dev/DB_*")
	for _, tc := range []struct {
		name   string
		grants []string
		ttl    string
		want   int
	}{
		{"same", []string{"read:payments/prod/*"}, "1h", 201},
		{"narrower name", []string{"read:payments/prod/STRIPE_KEY"}, "", 201},
		{"narrower glob", []string{"write:payments/dev/DB_URL_*"}, "1h", 201},
		{"other action", []string{"write:payments/prod/*"}, "1h", 403},
		{"other env", []string{"read:payments/dev/*"}, "1h", 403},
		{"wider glob", []string{"write:payments/dev/D*"}, "1h", 403},
		{"wildcard project", []string{"read:*/prod/*"}, "1h", 403},
		{"admin", []string{"admin:payments/prod/*"}, "1h", 403},
		{"outlives", []string{"read:payments/prod/*"}, "3h", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.mustDo(t, parent, "POST", "/v1/tokens", map[string]any{"name": "child-" + strings.ReplaceAll(tc.name, " ", "-"), "grants": tc.grants, "ttl": tc.ttl}, tc.want)
		})
	}
	// A child with no ttl inherits the parent's expiry.
	b := e.mustDo(t, e.admin, "GET", "/v1/tokens/child-narrower-name", nil, 200)
	var tok tokenward.Token
	json.Unmarshal(b, &tok)
	if want := e.clock.Now().Add(2 * time.Hour); !tok.ExpiresAt.Equal(want) {
		t.Fatalf("got expiry %v; want the parent's %v", tok.ExpiresAt, want)
	}
}

// TestSafetyHeaders: every API answer, success or error, is JSON that is
// neither cached nor sniffed as another type. The header values are shared
// between answers (server.go), so a handler or middleware adding to one
// answer's header must not show in the next.
func TestSafetyHeaders(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": "v"}, 200)
	for _, tc := range []struct {
		token, method, path string
		status              int
	}{
		{e.admin, "GET", "/v1/secrets/payments/prod/KEY", 200},
		{e.admin, "GET", "/v1/values/payments/prod", 200},
		{e.admin, "GET", "/v1/secrets/payments/prod/NOPE", 404},
		{"", "GET", "/v1/secrets/payments/prod/KEY", 401},
		{e.admin, "GET", "/v1/no-such-route", 404},
		{e.admin, "GET", "/gw/no-such-route/x", 503},           // the gateway is off here
		{e.admin, "GET", "/v1/secrets/payments/prod/KEY", 200}, // after the others, unchanged
	} {
		resp := e.request(t, t.Context(), tc.token, tc.method, tc.path, nil)
		status, body := readAnswer(resp)
		if status != tc.status {
			t.Errorf("%s %s: got %d %s; want %d", tc.method, tc.path, status, body, tc.status)
		}
		for k, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if got := resp.Header.Values(k); len(got) != 1 || got[0] != want {
				t.Errorf("%s %s: %s is %q; want %q alone", tc.method, tc.path, k, got, want)
			}
		}
	}
}

// TestEnvFetchAfterWrite: an environment fetch writes its secrets' fields
// from a memo of the cached records (fieldsMemo); a write replaces the
// record, and the next fetch shows the new version and owner.
func TestEnvFetchAfterWrite(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/A", map[string]any{"value": "a1"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/B", map[string]any{"value": "b1"}, 200)
	fetch := func() api.EnvValuesResponse {
		t.Helper()
		var r api.EnvValuesResponse
		if err := json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/values/payments/prod", nil, 200), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for range 3 {
		if r := fetch(); r.Values["A"] != "a1" || r.Secrets[0].Version != 1 || r.Secrets[0].Owner != "" {
			t.Fatalf("before the write: got %+v, %+v", r.Values, r.Secrets[0])
		}
	}
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/A", map[string]any{"value": "a2", "owner": "team-pay"}, 200)
	r := fetch()
	if r.Values["A"] != "a2" || r.Secrets[0].Version != 2 || r.Secrets[0].Owner != "team-pay" || r.Secrets[1].Version != 1 {
		t.Errorf("after the write: got %+v, %+v, %+v; want A at version 2 owned by team-pay", r.Values, r.Secrets[0], r.Secrets[1])
	}
}
