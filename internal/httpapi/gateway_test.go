package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/gateway"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/sqlite"
)

const gwValue = "ghp_GatewayInjectedCredential_0123456789"

// gwEnv is a server with the gateway on, a recording upstream on
// loopback, a route "github" to it, the audit trail in memory and the
// server's log in a buffer.
type gwEnv struct {
	*env
	upstream *httptest.Server
	seen     chan http.Header
	mu       sync.Mutex
	entries  []*tokenward.AuditEntry
	log      bytes.Buffer
}

func mustServeGateway(t testing.TB) *gwEnv {
	t.Helper()
	c, clk, admin := mustCore(t)
	g := &gwEnv{seen: make(chan http.Header, 100)}
	api := httpapi.NewServer(c, slog.New(slog.NewTextHandler(lockedWriter{&g.mu, &g.log}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	db := c.Store.(*sqlite.DB)
	api.Gateway = &gateway.Gateway{Routes: db, Secrets: c.GatewaySecrets(), Clock: db}
	t.Cleanup(api.Gateway.Close)
	c.DBGateway = &core.DBGateway{Store: db}
	api.Audit = func(_ context.Context, a *tokenward.AuditEntry) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.entries = append(g.entries, a)
		return nil
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	g.env = &env{srv: srv, api: api, core: c, clock: clk, admin: admin}
	g.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.seen <- r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(g.upstream.Close)
	g.mustDo(t, admin, "POST", "/v1/projects", map[string]any{"name": "acme", "environments": []string{"prod"}}, 201)
	g.mustDo(t, admin, "PUT", "/v1/secrets/acme/prod/GITHUB_TOKEN", map[string]any{"value": gwValue}, 200)
	g.mustDo(t, admin, "POST", "/v1/gateway/routes", map[string]any{
		"name": "github", "upstream": g.upstream.URL, "secret": "acme/prod/GITHUB_TOKEN", "inject": "header:Authorization=Bearer {{value}}",
		"allow": []string{"GET /repos/acme/*", "POST /repos/acme/*/issues"}, "allow_nets": []string{"127.0.0.0/8"}, "rate": "3/m"}, 201)
	return g
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (g *gwEnv) call(t *testing.T, token, method, path string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, g.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestGatewayGrants: who may call through a route — its gateway grant (or
// a glob over it), a full admin — and nobody else; the allow rules and
// the path check refuse before the upstream is reached; only allowed
// calls reach it, with the route's credential and never the caller's.
func TestGatewayGrants(t *testing.T) {
	g := mustServeGateway(t)
	tokens := map[string]string{"admin": g.admin}
	for name, grant := range map[string]string{"route": "gateway:github", "glob": "gateway:git*", "all": "gateway:*", "other": "gateway:gitlab", "reader": "read:*/*/*", "acme-admin": "admin:acme/*/*"} {
		_, tokens[name] = g.mustToken(t, g.admin, name, "", grant)
	}
	revokedID, revoked := g.mustToken(t, g.admin, "revoked", "", "gateway:github")
	g.mustDo(t, g.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)
	tokens["revoked"], tokens["none"] = revoked, ""
	tests := []struct {
		who, method, path string
		want              int
	}{
		{"route", "GET", "/gw/github/repos/acme/web", 200},
		{"glob", "GET", "/gw/github/repos/acme/web", 200},
		{"all", "GET", "/gw/github/repos/acme/web", 200},
		{"admin", "GET", "/gw/github/repos/acme/web", 200},
		{"route", "POST", "/gw/github/repos/acme/web/issues", 200},
		{"other", "GET", "/gw/github/repos/acme/web", 403},
		{"reader", "GET", "/gw/github/repos/acme/web", 403},
		{"acme-admin", "GET", "/gw/github/repos/acme/web", 403},
		{"revoked", "GET", "/gw/github/repos/acme/web", 401},
		{"none", "GET", "/gw/github/repos/acme/web", 401},
		{"route", "GET", "/gw/github/repos/other/web", 403},
		{"route", "DELETE", "/gw/github/repos/acme/web", 403},
		{"route", "GET", "/gw/github/repos/acme/web/pulls", 403},
		{"route", "GET", "/gw/github/repos/acme/%2e%2e/other/web", 400},
		{"route", "GET", "/gw/github/repos/acme%2fother/web", 400},
		{"route", "GET", "/gw/github/repos/acme/../other/web", 400},
		{"all", "GET", "/gw/nosuch/repos/acme/web", 404},
		{"all", "GET", "/gw/Bad/x", 400},
	}
	reached := 0
	for _, tt := range tests {
		g.clock.Add(time.Minute) // a fresh rate budget: this test is not about the rate
		got, _, body := g.call(t, tokens[tt.who], tt.method, tt.path)
		if got != tt.want {
			t.Errorf("%s %s as %s: got %d %s; want %d", tt.method, tt.path, tt.who, got, body, tt.want)
		}
		if got == 200 {
			reached++
			h := <-g.seen
			if a := h.Get("Authorization"); a != "Bearer "+gwValue {
				t.Errorf("%s as %s: upstream got Authorization %q; want the route's credential", tt.path, tt.who, a)
			}
			if strings.Contains(body, gwValue) {
				t.Errorf("the credential came back to the caller: %s", body)
			}
		}
	}
	if len(g.seen) != 0 {
		t.Errorf("%d refused calls reached the upstream; want none", len(g.seen))
	}
	g.checkTrail(t, tokens, reached, len(tests))
}

// checkTrail: every call is one gateway.call entry with the route, method,
// path, status, bytes and latency, and neither the credential nor a token
// is in the trail or the log.
func (g *gwEnv) checkTrail(t *testing.T, tokens map[string]string, allowed, calls int) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	var n, ok int
	for _, e := range g.entries {
		b, _ := json.Marshal(e)
		for who, tok := range tokens {
			if tok != "" && strings.Contains(string(b), tok) {
				t.Errorf("audit entry holds %s's token: %s", who, b)
			}
		}
		if strings.Contains(string(b), gwValue) {
			t.Errorf("audit entry holds the credential: %s", b)
		}
		if e.Action != "gateway.call" {
			continue
		}
		n++
		if e.Status == 200 {
			ok++
			for _, k := range []string{"route", "method", "path", "bytes_in", "bytes_out", "latency_ms"} {
				if e.Meta[k] == "" {
					t.Errorf("entry %+v has no %s", e, k)
				}
			}
			if e.Meta["bytes_out"] == "0" || e.TokenID == "" || e.Resource != "gateway:github" {
				t.Errorf("entry %+v: want bytes out, the token and the route", e)
			}
		}
	}
	if n != calls || ok != allowed {
		t.Errorf("trail: %d gateway calls, %d allowed; want %d, %d", n, ok, calls, allowed)
	}
	for who, tok := range tokens {
		if tok != "" && strings.Contains(g.log.String(), tok) {
			t.Errorf("the log holds %s's token", who)
		}
	}
	if strings.Contains(g.log.String(), gwValue) {
		t.Error("the log holds the credential")
	}
}

// TestGatewayMethodOverride: a route that allows POST on a path does not
// let a caller have the upstream DELETE it through a method override (a
// header, however spelt, or a _method query parameter), which Rails,
// Symfony, Laravel, ASP.NET Core, Express and Google's APIs honour on a
// POST; an override the rules allow goes through.
func TestGatewayMethodOverride(t *testing.T) {
	g := mustServeGateway(t)
	_, tok := g.mustToken(t, g.admin, "ci", "", "gateway:github")
	tests := []struct {
		name, target, header, value string
		want                        int
	}{
		{"header", "/repos/acme/web/issues", "X-HTTP-Method-Override", "DELETE", 403},
		{"lower case", "/repos/acme/web/issues", "X-HTTP-Method-Override", "delete", 403},
		{"cgi spelling", "/repos/acme/web/issues", "X_HTTP_Method_Override", "PUT", 403},
		{"odata", "/repos/acme/web/issues", "X-HTTP-Method", "PATCH", 403},
		{"query", "/repos/acme/web/issues?_method=DELETE", "", "", 403},
		{"allowed override", "/repos/acme/web/issues", "X-HTTP-Method-Override", "POST", 200},
		{"none", "/repos/acme/web/issues", "", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.clock.Add(time.Minute) // a fresh rate budget
			req, _ := http.NewRequest("POST", g.srv.URL+"/gw/github"+tt.target, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if tt.header != "" {
				req.Header[tt.header] = []string{tt.value}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("got %d %s; want %d", resp.StatusCode, b, tt.want)
			}
			if tt.want == 403 && !strings.Contains(string(b), "method override") {
				t.Errorf("got %s; want the refusal to name the override", b)
			}
			if tt.want == 200 {
				<-g.seen
			}
		})
	}
	if len(g.seen) != 0 {
		t.Errorf("%d refused calls reached the upstream; want none", len(g.seen))
	}
}

// TestGatewayRevocationRotationRate: a revoked token stops on its next
// call; a new secret version is injected on the next call; the route's
// per-token rate answers 429 with Retry-After, per token.
func TestGatewayRevocationRotationRate(t *testing.T) {
	g := mustServeGateway(t)
	id, tok := g.mustToken(t, g.admin, "ci", "", "gateway:github")
	_, other := g.mustToken(t, g.admin, "ci2", "", "gateway:github")
	if got, _, b := g.call(t, tok, "GET", "/gw/github/repos/acme/x"); got != 200 {
		t.Fatalf("got %d %s; want 200", got, b)
	}
	<-g.seen
	g.mustDo(t, g.admin, "PUT", "/v1/secrets/acme/prod/GITHUB_TOKEN", map[string]any{"value": "rotated_0123456789abcdef"}, 200)
	if got, _, _ := g.call(t, tok, "GET", "/gw/github/repos/acme/x"); got != 200 {
		t.Fatalf("after rotation: got %d; want 200", got)
	}
	if a := (<-g.seen).Get("Authorization"); a != "Bearer rotated_0123456789abcdef" {
		t.Fatalf("after rotation: upstream got %q; want the new version", a)
	}
	g.call(t, tok, "GET", "/gw/github/repos/acme/x") // the third of 3/m
	<-g.seen
	got, h, _ := g.call(t, tok, "GET", "/gw/github/repos/acme/x")
	if got != 429 || h.Get("Retry-After") != "20" {
		t.Fatalf("fourth call in a minute: got %d, Retry-After %q; want 429, 20", got, h.Get("Retry-After"))
	}
	if got, _, _ := g.call(t, other, "GET", "/gw/github/repos/acme/x"); got != 200 {
		t.Fatalf("another token: got %d; want 200 (the rate is per token)", got)
	}
	<-g.seen
	g.clock.Add(20 * time.Second)
	if got, _, _ := g.call(t, tok, "GET", "/gw/github/repos/acme/x"); got != 200 {
		t.Fatalf("after Retry-After: got %d; want 200", got)
	}
	<-g.seen
	g.mustDo(t, g.admin, "POST", "/v1/tokens/"+id+"/revoke", nil, 200)
	if got, _, _ := g.call(t, tok, "GET", "/gw/github/repos/acme/x"); got != 401 {
		t.Fatalf("revoked: got %d; want 401 on the next call", got)
	}
	if len(g.seen) != 0 {
		t.Error("a refused call reached the upstream")
	}
}

// TestGatewayUpstreamDown: an upstream that cannot be reached is a 502
// whose answer, audit entry and log hold no injected credential, even one
// in the URL (query injection).
func TestGatewayUpstreamDown(t *testing.T) {
	g := mustServeGateway(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	g.mustDo(t, g.admin, "POST", "/v1/gateway/routes", map[string]any{
		"name": "dead", "upstream": dead.URL, "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:access_token",
		"allow": []string{"GET /**"}, "allow_nets": []string{"127.0.0.0/8"}}, 201)
	g.mustDo(t, g.admin, "POST", "/v1/gateway/routes", map[string]any{
		"name": "noallow", "upstream": g.upstream.URL, "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:access_token", "allow": []string{"GET /**"}}, 201)
	_, tok := g.mustToken(t, g.admin, "ci", "", "gateway:*")
	for _, tt := range []struct{ path, want string }{{"/gw/dead/x", "cannot be reached"}, {"/gw/noallow/x", "egress policy"}} {
		got, _, body := g.call(t, tok, "GET", tt.path)
		if got != 502 || !strings.Contains(body, tt.want) || strings.Contains(body, gwValue) {
			t.Errorf("%s: got %d %s; want 502 saying %q, without the credential", tt.path, got, body, tt.want)
		}
	}
	g.checkTrail(t, map[string]string{"ci": tok, "admin": g.admin}, 0, 2)
}

// TestGatewayRouteAdmin: a route is checked when created, shown without
// any value, and its management needs admin on its secrets.
func TestGatewayRouteAdmin(t *testing.T) {
	g := mustServeGateway(t)
	_, acmeAdmin := g.mustToken(t, g.admin, "acme-admin", "", "admin:acme/prod/*")
	_, user := g.mustToken(t, g.admin, "user", "", "gateway:github")
	_, stranger := g.mustToken(t, g.admin, "stranger", "", "gateway:gitlab")
	bad := []map[string]any{
		{"name": "x", "upstream": "ftp://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "basic", "allow": []string{"GET /"}},
		{"name": "x", "upstream": "https://u:p@h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /"}},
		{"name": "x", "upstream": "https://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "header:Host={{value}}", "allow": []string{"GET /"}},
		{"name": "x", "upstream": "https://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "header:X=no-placeholder", "allow": []string{"GET /"}},
		{"name": "x", "upstream": "https://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{}},
		{"name": "x", "upstream": "https://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /a/../b"}},
		{"name": "x", "upstream": "https://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /"}, "rate": "fast"},
		{"name": "x", "upstream": "https://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /"}, "allow_nets": []string{"nope"}},
		{"name": "x", "upstream": "https://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /"}, "ca_bundle": "not pem"},
		{"name": "X", "upstream": "https://h", "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /"}},
		{"name": "x", "upstream": "https://h", "secret": "acme/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /"}},
	}
	for _, b := range bad {
		if got, body := g.do(t, g.admin, "POST", "/v1/gateway/routes", b); got != 400 {
			t.Errorf("%v: got %d %s; want 400", b, got, body)
		}
	}
	mine := map[string]any{"name": "mine", "upstream": "https://api.example.com", "secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /"}, "timeout": "5s"}
	g.mustDo(t, user, "POST", "/v1/gateway/routes", mine, 403)
	b := g.mustDo(t, acmeAdmin, "POST", "/v1/gateway/routes", mine, 201)
	if strings.Contains(string(b), gwValue) || !strings.Contains(string(b), `"timeout":"5s"`) {
		t.Errorf("created: %s; want the route without any value, timeout 5s", b)
	}
	g.mustDo(t, acmeAdmin, "POST", "/v1/gateway/routes", mine, 409)
	g.mustDo(t, user, "GET", "/v1/gateway/routes/github", nil, 200)
	g.mustDo(t, stranger, "GET", "/v1/gateway/routes/github", nil, 403)
	g.mustDo(t, user, "GET", "/v1/gateway/routes/nosuch", nil, 404)
	var list struct{ Routes []struct{ Name string } }
	json.Unmarshal(g.mustDo(t, user, "GET", "/v1/gateway/routes", nil, 200), &list)
	if len(list.Routes) != 1 || list.Routes[0].Name != "github" {
		t.Errorf("user's list: got %+v; want github only", list.Routes)
	}
	g.mustDo(t, user, "DELETE", "/v1/gateway/routes/github", nil, 403)
	g.mustDo(t, acmeAdmin, "DELETE", "/v1/gateway/routes/github", nil, 200)
	if got, _, _ := g.call(t, user, "GET", "/gw/github/repos/acme/x"); got != 404 {
		t.Errorf("deleted route: got %d; want 404 on the next call", got)
	}
}

// TestGatewayAuditFailClosed: when the trail cannot record a forwarded
// call, the caller never gets a complete response.
func TestGatewayAuditFailClosed(t *testing.T) {
	g := mustServeGateway(t)
	_, tok := g.mustToken(t, g.admin, "ci", "", "gateway:github")
	g.api.Audit = func(context.Context, *tokenward.AuditEntry) error {
		return tokenward.Errorf(tokenward.EUNAVAILABLE, "the trail is down")
	}
	req, _ := http.NewRequest("GET", g.srv.URL+"/gw/github/repos/acme/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // refused before the headers: fine too
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("got a complete %d response although the trail refused the entry; want it cut off", resp.StatusCode)
	}
}

// TestGatewayFeedsMonitor: gateway calls reach anomaly detection like any
// request: a revoked token presented at a route is a revoked_token_use
// anomaly naming the route.
func TestGatewayFeedsMonitor(t *testing.T) {
	e := mustServeMonitor(t)
	db := e.core.Store.(*sqlite.DB)
	e.api.Gateway = &gateway.Gateway{Routes: db, Secrets: e.core.GatewaySecrets(), Clock: db}
	t.Cleanup(e.api.Gateway.Close)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "acme", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/acme/prod/GITHUB_TOKEN", map[string]any{"value": gwValue}, 200)
	e.mustDo(t, e.admin, "POST", "/v1/gateway/routes", map[string]any{"name": "github", "upstream": "https://api.github.com",
		"secret": "acme/prod/GITHUB_TOKEN", "inject": "query:k", "allow": []string{"GET /**"}}, 201)
	id, tok := e.mustToken(t, e.admin, "ci", "", "gateway:github")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+id+"/revoke", nil, 200)
	req, _ := http.NewRequest("GET", e.srv.URL+"/gw/github/repos/acme/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("revoked token: got %d; want 401", resp.StatusCode)
	}
	for _, a := range e.anomalies(t, true) {
		if a.TokenID == id && a.Rule == "revoked_token_use" && a.Resource == "gateway:github" {
			return
		}
	}
	t.Fatalf("no revoked_token_use anomaly for %s at gateway:github: %+v", id, e.anomalies(t, true))
}

// TestGatewayRouteNamesShared: gateway:<route> names an HTTP route and a
// database route alike, so one name cannot be both.
func TestGatewayRouteNamesShared(t *testing.T) {
	g := mustServeGateway(t)
	g.mustDo(t, g.admin, "PUT", "/v1/secrets/acme/prod/DATABASE_URL", map[string]any{"value": "postgres://u:p@db/x"}, 200)
	g.mustDo(t, g.admin, "POST", "/v1/gateway/db/routes", map[string]any{"name": "pgprod", "upstream": "127.0.0.1:5432", "secret": "acme/prod/DATABASE_URL"}, 201)
	b := g.mustDo(t, g.admin, "POST", "/v1/gateway/routes", map[string]any{"name": "pgprod", "upstream": "https://x.example", "secret": "acme/prod/GITHUB_TOKEN",
		"inject": "query:k", "allow": []string{"GET /"}}, 409)
	if !strings.Contains(string(b), "database gateway route") {
		t.Errorf("HTTP route over a database route's name: got %s; want the conflict named", b)
	}
	b = g.mustDo(t, g.admin, "POST", "/v1/gateway/db/routes", map[string]any{"name": "github", "upstream": "127.0.0.1:5432", "secret": "acme/prod/DATABASE_URL"}, 409)
	if !strings.Contains(string(b), "HTTP gateway route") {
		t.Errorf("database route over an HTTP route's name: got %s; want the conflict named", b)
	}
}

// TestGatewayRotationDuringTraffic: new versions of the secret written
// while calls are in flight fail no call, and each call carries a whole
// version (the old or a new one), never a mix or nothing.
func TestGatewayRotationDuringTraffic(t *testing.T) {
	g := mustServeGateway(t)
	g.mustDo(t, g.admin, "POST", "/v1/gateway/routes", map[string]any{
		"name": "busy", "upstream": g.upstream.URL, "secret": "acme/prod/GITHUB_TOKEN", "inject": "header:Authorization=Bearer {{value}}",
		"allow": []string{"GET /**"}, "allow_nets": []string{"127.0.0.0/8"}}, 201)
	_, tok := g.mustToken(t, g.admin, "ci", "", "gateway:busy")
	versions := []string{gwValue}
	for i := range 5 {
		versions = append(versions, "ghp_Rotated_"+strings.Repeat(string(rune('a'+i)), 24))
	}
	whole := map[string]bool{}
	for _, v := range versions {
		whole["Bearer "+v] = true
	}
	const workers, calls = 4, 25
	done := make(chan []string)
	go func() {
		var bad []string
		for range workers * calls {
			if a := (<-g.seen).Get("Authorization"); !whole[a] {
				bad = append(bad, a)
			}
		}
		done <- bad
	}()
	var wg sync.WaitGroup
	failed := make(chan string, workers*calls)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				req, _ := http.NewRequest("GET", g.srv.URL+"/gw/busy/x", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					failed <- err.Error()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed <- resp.Status
				}
			}
		}()
	}
	for _, v := range versions[1:] {
		g.mustDo(t, g.admin, "PUT", "/v1/secrets/acme/prod/GITHUB_TOKEN", map[string]any{"value": v}, 200)
	}
	wg.Wait()
	close(failed)
	for f := range failed {
		t.Errorf("a call failed during rotation: %s", f)
	}
	if bad := <-done; len(bad) > 0 {
		t.Errorf("%d calls carried no whole version: %q", len(bad), bad)
	}
	// After the last write, the next call carries the last version.
	g.call(t, tok, "GET", "/gw/busy/x")
	if got := (<-g.seen).Get("Authorization"); got != "Bearer "+versions[len(versions)-1] {
		t.Errorf("after the rotations: upstream got %q; want the last version", got)
	}
}

// TestGatewayStreamEndsWhenItsTokenMayNot: a call whose response streams
// (server-sent events, a download) is checked again while it lasts: once
// its token is revoked, or expires, the stream is cut off within the
// recheck interval, and the call's audit entry says why. It had streamed
// on for as long as the upstream sent.
func TestGatewayStreamEndsWhenItsTokenMayNot(t *testing.T) {
	g := mustServeGateway(t)
	g.api.Gateway.RecheckInterval = 20 * time.Millisecond
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	events := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(5 * time.Millisecond):
			case <-r.Context().Done():
				return
			case <-stop:
				return
			}
		}
	}))
	t.Cleanup(events.Close)
	g.mustDo(t, g.admin, "POST", "/v1/gateway/routes", map[string]any{
		"name": "events", "upstream": events.URL, "secret": "acme/prod/GITHUB_TOKEN", "inject": "header:Authorization=Bearer {{value}}",
		"allow": []string{"GET /**"}, "allow_nets": []string{"127.0.0.0/8"}}, 201)
	for _, tc := range []struct {
		name string
		ttl  string
		end  func(id string) // makes the token unusable
		why  string          // in the audit entry's meta.ended_by
	}{
		{"revoked", "", func(id string) { g.mustDo(t, g.admin, "POST", "/v1/tokens/"+id+"/revoke", nil, 200) }, "is revoked"},
		{"expired", "1h", func(string) { g.clock.Add(time.Hour) }, "expired at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, tok := g.mustToken(t, g.admin, "stream-"+tc.name, tc.ttl, "gateway:events")
			req, _ := http.NewRequest("GET", g.srv.URL+"/gw/events/feed", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("got %d; want 200", resp.StatusCode)
			}
			lines := bufio.NewReader(resp.Body)
			read := func() error {
				_, err := lines.ReadString('\n')
				return err
			}
			for range 10 { // the stream flows past several rechecks
				if err := read(); err != nil {
					t.Fatalf("the stream ended with a valid token: %v", err)
				}
			}
			time.Sleep(50 * time.Millisecond)
			tc.end(id)
			ended := make(chan error, 1)
			go func() {
				for {
					if err := read(); err != nil {
						ended <- err
						return
					}
				}
			}()
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream goes on after its token may no longer call the route")
			}
			// The call's entry is recorded when the handler ends, which may
			// be a moment after the client saw the stream cut off.
			deadline := time.Now().Add(5 * time.Second)
			for {
				var e *tokenward.AuditEntry
				g.mu.Lock()
				for _, x := range g.entries {
					if x.TokenID == id && x.Action == "gateway.call" {
						e = x
					}
				}
				g.mu.Unlock()
				if e != nil {
					if e.Meta["aborted"] != "true" || !strings.Contains(e.Meta["ended_by"], tc.why) {
						t.Fatalf("got entry meta %v; want aborted, ended_by %q", e.Meta, tc.why)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no gateway.call entry for the cut-off stream")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
