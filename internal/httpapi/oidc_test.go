package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
)

// oidcEnv is a server with OIDC enabled, a fake issuer, and an audit hook
// that keeps every entry.
type oidcEnv struct {
	*env
	issuer   *oidctest.Issuer
	verifier *oidc.Verifier
	mu       sync.Mutex
	audit    []*tokenward.AuditEntry
}

func mustServeOIDC(tb testing.TB) *oidcEnv {
	tb.Helper()
	e := &oidcEnv{env: MustServe(tb), issuer: oidctest.NewIssuer(tb)}
	store, ok := e.core.Store.(core.BindingStore)
	if !ok {
		tb.Fatalf("store %T is not a core.BindingStore", e.core.Store)
	}
	e.verifier = oidc.NewVerifier()
	e.core.OIDC = &core.OIDC{Store: store, Verifier: e.verifier, MaxTTL: time.Hour}
	e.api.Audit = func(_ context.Context, a *tokenward.AuditEntry) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.audit = append(e.audit, a)
		return nil
	}
	return e
}

func (e *oidcEnv) lastAudit(tb testing.TB, action string) *tokenward.AuditEntry {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.audit) - 1; i >= 0; i-- {
		if e.audit[i].Action == action {
			return e.audit[i]
		}
	}
	tb.Fatalf("no audit entry for %s", action)
	return nil
}

func (e *oidcEnv) bindingBody(name string, grants ...string) map[string]any {
	return map[string]any{
		"name": name, "issuer": e.issuer.URL, "audiences": []string{"tokenward"},
		"claims": []map[string]any{
			{"claim": "repository", "values": []string{"acme/payments"}},
			{"claim": "ref", "values": []string{"refs/heads/main"}},
		},
		"grants": grants, "ttl": "15m",
	}
}

func (e *oidcEnv) login(tb testing.TB, binding, jwt string) (int, []byte) {
	tb.Helper()
	return e.do(tb, "", "POST", "/v1/auth/oidc/login", map[string]any{"binding": binding, "jwt": jwt})
}

// TestOIDCAuthorizationMatrix drives every binding route with tokens that
// administer the binding's grants, tokens that do not, a just-in-time
// token, and unauthenticated callers.
func TestOIDCAuthorizationMatrix(t *testing.T) {
	e := mustServeOIDC(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	e.mustDo(t, e.admin, "POST", "/v1/bindings", e.bindingBody("deploy-prod", "read:payments/prod/*"), 201)
	tokens := map[string]string{"admin": e.admin}
	_, tokens["payadmin"] = e.mustToken(t, e.admin, "payadmin", "", "admin:payments/*/*")
	_, tokens["reader"] = e.mustToken(t, e.admin, "reader", "", "read:payments/prod/*")
	_, tokens["other"] = e.mustToken(t, e.admin, "other", "", "admin:other/*/*")
	// A just-in-time token, even one holding admin, never manages bindings.
	e.mustDo(t, e.admin, "POST", "/v1/bindings", e.bindingBody("ci-admin", "admin:payments/*/*"), 201)
	b := e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{"binding": "ci-admin", "jwt": e.issuer.Sign(t, oidctest.GitHubClaims(e.issuer.URL, "tokenward", e.clock.Now()))}, 200)
	var lr api.CreateTokenResponse
	must(t, json.Unmarshal(b, &lr))
	tokens["jit"] = lr.Secret
	tokens["none"] = ""
	tokens["unknown"], _ = tokenward.NewTokenSecret(tokenward.TokenAdmin)

	n := 0
	newName := func() string { n++; return fmt.Sprint("b", n) }
	victim := func() string {
		name := newName()
		e.mustDo(t, e.admin, "POST", "/v1/bindings", e.bindingBody(name, "read:payments/prod/*"), 201)
		return name
	}
	type step struct {
		method string
		path   func() string
		body   func() any
		ok     []string
		status int
	}
	fixed := func(p string) func() string { return func() string { return p } }
	steps := []step{
		{"GET", fixed("/v1/bindings"), nil, []string{"admin", "payadmin", "reader", "other"}, 200},
		{"POST", fixed("/v1/bindings"), func() any { return e.bindingBody(newName(), "read:payments/prod/*") }, []string{"admin", "payadmin"}, 201},
		{"GET", fixed("/v1/bindings/deploy-prod"), nil, []string{"admin", "payadmin"}, 200},
		{"DELETE", func() string { return "/v1/bindings/" + victim() }, nil, []string{"admin", "payadmin"}, 200},
		{"POST", fixed("/v1/bindings/deploy-prod/disable"), nil, []string{"admin", "payadmin"}, 200},
		{"POST", fixed("/v1/bindings/deploy-prod/enable"), nil, []string{"admin", "payadmin"}, 200},
	}
	for _, st := range steps {
		for _, who := range []string{"admin", "payadmin", "reader", "other", "jit", "none", "unknown"} {
			want := 403
			for _, ok := range st.ok {
				if ok == who {
					want = st.status
				}
			}
			if who == "none" || who == "unknown" {
				want = 401
			}
			path := st.path()
			var body any
			if st.body != nil {
				body = st.body()
			}
			t.Run(st.method+" "+path+" as "+who, func(t *testing.T) {
				if got, b := e.do(t, tokens[who], st.method, path, body); got != want {
					t.Fatalf("got %d %s; want %d", got, b, want)
				}
			})
		}
	}
	// Every OIDC route but the public login is in the matrix.
	if got := len(steps) + 1; got != e.api.OIDCRouteCount() {
		t.Fatalf("matrix covers %d routes; the OIDC group has %d", got, e.api.OIDCRouteCount())
	}
	// The listing shows only what the caller administers.
	var list struct{ Bindings []api.Binding }
	must(t, json.Unmarshal(e.mustDo(t, tokens["other"], "GET", "/v1/bindings", nil, 200), &list))
	if len(list.Bindings) != 0 {
		t.Fatalf("admin:other/*/* lists %d bindings; want 0", len(list.Bindings))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBindingCreateLimits checks that a binding never gives more than its
// creator administers, and that bad bindings are refused with a reason.
func TestBindingCreateLimits(t *testing.T) {
	e := mustServeOIDC(t)
	_, payadmin := e.mustToken(t, e.admin, "payadmin", "", "admin:payments/prod/*")
	body := func(mod func(m map[string]any)) map[string]any {
		m := e.bindingBody("x", "read:payments/prod/*")
		mod(m)
		return m
	}
	for _, tc := range []struct {
		name  string
		token string
		body  map[string]any
		want  int
		msg   string
	}{
		{"wider than creator", payadmin, body(func(m map[string]any) { m["grants"] = []string{"read:payments/*/*"} }), 403, "not granted: admin:payments/*/*"},
		{"other project", payadmin, body(func(m map[string]any) { m["grants"] = []string{"read:other/prod/*"} }), 403, "admin:other/prod/*"},
		{"no claims", e.admin, body(func(m map[string]any) { m["claims"] = []any{} }), 400, "no claim conditions"},
		{"ttl above cap", e.admin, body(func(m map[string]any) { m["ttl"] = "2h" }), 400, "above the cap"},
		{"bad ttl", e.admin, body(func(m map[string]any) { m["ttl"] = "soon" }), 400, "ttl"},
		{"no ttl", e.admin, body(func(m map[string]any) { delete(m, "ttl") }), 400, "ttl is required"},
		{"plain http issuer", e.admin, body(func(m map[string]any) { m["issuer"] = "http://ci.example.com" }), 400, "https"},
		{"bad op", e.admin, body(func(m map[string]any) {
			m["claims"] = []map[string]any{{"claim": "repository", "op": "regex", "values": []string{"a"}}}
		}), 400, "op must be"},
		{"unknown preset", e.admin, body(func(m map[string]any) { delete(m, "issuer"); m["preset"] = "jenkins" }), 400, "unknown preset"},
		{"jwks_file is not API input", e.admin, body(func(m map[string]any) { m["jwks_file"] = "/etc/passwd" }), 400, "unknown field"},
		{"bad name", e.admin, body(func(m map[string]any) { m["name"] = "Deploy_Prod" }), 400, "binding name"},
		{"within creator", payadmin, body(func(m map[string]any) { m["grants"] = []string{"read:payments/prod/STRIPE_*"} }), 201, ""},
		{"duplicate", payadmin, body(func(m map[string]any) {}), 409, "exists already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, b := e.do(t, tc.token, "POST", "/v1/bindings", tc.body)
			if got != tc.want || !strings.Contains(string(b), tc.msg) {
				t.Fatalf("got %d %s; want %d containing %q", got, b, tc.want, tc.msg)
			}
		})
	}
	// The created binding reads back with its TTL as a duration string.
	var bb api.Binding
	must(t, json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/bindings/x", nil, 200), &bb))
	if bb.TTL != "15m0s" || !bb.Enabled || len(bb.Claims) != 2 || bb.Claims[0].Op != "exact" || bb.CreatedBy == "" {
		t.Fatalf("got %+v; want ttl 15m0s, enabled, 2 exact claims, created_by set", bb)
	}
}

// TestOIDCLogin exchanges GitHub- and GitLab-shaped identity tokens and
// checks what the minted token may do, how long it lives, and every
// refusal: generic to the caller, detailed in the audit log.
func TestOIDCLogin(t *testing.T) {
	e := mustServeOIDC(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "sk_live_prod"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/dev/STRIPE_KEY", map[string]any{"value": "sk_test_dev"}, 200)
	e.mustDo(t, e.admin, "POST", "/v1/bindings", e.bindingBody("deploy-prod", "read:payments/prod/*"), 201)
	gl := e.bindingBody("gitlab-prod", "read:payments/prod/STRIPE_KEY")
	gl["claims"] = []map[string]any{{"claim": "project_path", "values": []string{"acme/payments"}}, {"claim": "ref_protected", "values": []string{"true"}}}
	gl["ttl"] = "5m"
	e.mustDo(t, e.admin, "POST", "/v1/bindings", gl, 201)

	now := e.clock.Now()
	var jwts []string
	sign := func(claims map[string]any) string {
		j := e.issuer.Sign(t, claims)
		jwts = append(jwts, j)
		return j
	}

	t.Run("github", func(t *testing.T) {
		jwt := sign(oidctest.GitHubClaims(e.issuer.URL, "tokenward", now))
		var lr api.CreateTokenResponse
		must(t, json.Unmarshal(e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{"binding": "deploy-prod", "jwt": jwt}, 200), &lr))
		tok := lr.Token
		if kind, err := tokenward.ParseToken(lr.Secret); err != nil || kind != tokenward.TokenJIT {
			t.Fatalf("got kind %q, %v; want a twj_ token", kind, err)
		}
		if tok.Kind != tokenward.TokenJIT || tok.CreatedBy != "binding:deploy-prod" || strings.Join(tok.Grants.Strings(), " ") != "read:payments/prod/*" {
			t.Fatalf("got %+v; want jit, created by binding:deploy-prod, read:payments/prod/*", tok)
		}
		if want := now.Add(15 * time.Minute); !tok.ExpiresAt.Equal(want) {
			t.Fatalf("got expiry %v; want %v", tok.ExpiresAt, want)
		}
		if tok.CI["repository"] != "acme/payments" || tok.CI["run_id"] != "9876543210" || tok.CI["issuer"] != e.issuer.URL || tok.CI["actor"] != "octocat" {
			t.Fatalf("got CI facts %v; want repository, run_id, issuer, actor", tok.CI)
		}
		a := e.lastAudit(t, "auth.oidc_login")
		if a.Outcome != tokenward.OutcomeAllowed || a.TokenID != tok.ID || a.CI["repository"] != "acme/payments" || a.Resource != "binding:deploy-prod" {
			t.Fatalf("got audit %+v; want allowed, token %s, CI facts, binding:deploy-prod", a, tok.ID)
		}
		// Its grants and nothing more.
		e.mustDo(t, lr.Secret, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 200)
		e.mustDo(t, lr.Secret, "GET", "/v1/secrets/payments/dev/STRIPE_KEY", nil, 403)
		e.mustDo(t, lr.Secret, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "x"}, 403)
		e.mustDo(t, lr.Secret, "POST", "/v1/tokens", map[string]any{"name": "wider", "grants": []string{"read:payments/*/*"}}, 403)
		e.mustDo(t, lr.Secret, "POST", "/v1/tokens", map[string]any{"name": "longer", "grants": []string{"read:payments/prod/*"}, "ttl": "1h"}, 403)
		e.mustDo(t, lr.Secret, "GET", "/v1/bindings", nil, 403)

		// Replay: refused, generic, audited as suspicious.
		got, b := e.login(t, "deploy-prod", jwt)
		if got != 401 || !strings.Contains(string(b), `"identity token rejected"`) {
			t.Fatalf("replay: got %d %s; want 401 identity token rejected", got, b)
		}
		a = e.lastAudit(t, "auth.oidc_login")
		if a.Outcome != tokenward.OutcomeDenied || !strings.Contains(a.Reason, "replay") || a.Meta["suspicious"] != "replay" || a.CI["run_id"] != "9876543210" {
			t.Fatalf("replay audit: got %+v; want denied, reason replay, suspicious, CI facts", a)
		}
		// Outlives nothing: after its TTL it is refused.
		e.clock.Add(15 * time.Minute)
		e.mustDo(t, lr.Secret, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 401)
		e.clock.Set(now)
	})

	t.Run("gitlab without binding name", func(t *testing.T) {
		jwt := sign(oidctest.GitLabClaims(e.issuer.URL, "tokenward", now))
		var lr api.CreateTokenResponse
		must(t, json.Unmarshal(e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{"jwt": jwt}, 200), &lr))
		if lr.Token.CreatedBy != "binding:gitlab-prod" || !lr.Token.ExpiresAt.Equal(now.Add(5*time.Minute)) || lr.Token.CI["repository"] != "acme/payments" || lr.Token.CI["run_id"] != "556677" {
			t.Fatalf("got %+v; want gitlab-prod, 5m, project_path and pipeline_id facts", lr.Token)
		}
		e.mustDo(t, lr.Secret, "GET", "/v1/secrets/payments/prod/STRIPE_KEY", nil, 200)
	})

	for _, tc := range []struct {
		name    string
		binding string
		claims  func() map[string]any
		reason  string
	}{
		{"wrong repository", "deploy-prod", func() map[string]any {
			c := oidctest.GitHubClaims(e.issuer.URL, "tokenward", now)
			c["repository"] = "acme/evil"
			return c
		}, `claim repository: got "acme/evil"`},
		{"expired", "deploy-prod", func() map[string]any {
			return oidctest.GitHubClaims(e.issuer.URL, "tokenward", now.Add(-time.Hour))
		}, "expired at"},
		{"wrong audience", "deploy-prod", func() map[string]any {
			return oidctest.GitHubClaims(e.issuer.URL, "someone-else", now)
		}, "audience"},
		{"unknown binding", "nope", func() map[string]any {
			return oidctest.GitHubClaims(e.issuer.URL, "tokenward", now)
		}, "no binding named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, b := e.login(t, tc.binding, sign(tc.claims()))
			var eb api.ErrorBody
			must(t, json.Unmarshal(b, &eb))
			if got != 401 || eb.Error.Message != "identity token rejected" {
				t.Fatalf("got %d %q; want 401 with exactly %q", got, eb.Error.Message, "identity token rejected")
			}
			if a := e.lastAudit(t, "auth.oidc_login"); a.Outcome != tokenward.OutcomeDenied || !strings.Contains(a.Reason, tc.reason) {
				t.Fatalf("got audit reason %q (%s); want denied containing %q", a.Reason, a.Outcome, tc.reason)
			}
		})
	}

	t.Run("disabled binding", func(t *testing.T) {
		e.mustDo(t, e.admin, "POST", "/v1/bindings/deploy-prod/disable", nil, 200)
		defer e.mustDo(t, e.admin, "POST", "/v1/bindings/deploy-prod/enable", nil, 200)
		if got, b := e.login(t, "deploy-prod", sign(oidctest.GitHubClaims(e.issuer.URL, "tokenward", now))); got != 401 {
			t.Fatalf("got %d %s; want 401", got, b)
		}
		if a := e.lastAudit(t, "auth.oidc_login"); !strings.Contains(a.Reason, "disabled") {
			t.Fatalf("got audit reason %q; want disabled", a.Reason)
		}
	})

	t.Run("forged tokens", func(t *testing.T) {
		claims := oidctest.GitHubClaims(e.issuer.URL, "tokenward", now)
		for name, jwt := range map[string]string{
			"alg none":       e.issuer.NoneToken(t, claims),
			"hmac confusion": e.issuer.HMACConfusionToken(t, claims),
			"tampered":       oidctest.Tamper(t, e.issuer.Sign(t, oidctest.GitHubClaims(e.issuer.URL, "tokenward", now)), map[string]any{"repository": "acme/payments", "iss": e.issuer.URL}),
			"garbage":        "not.a.jwt",
		} {
			jwts = append(jwts, jwt)
			if got, b := e.login(t, "deploy-prod", jwt); got != 401 || !strings.Contains(string(b), `"identity token rejected"`) {
				t.Errorf("%s: got %d %s; want 401 identity token rejected", name, got, b)
			}
		}
	})

	t.Run("debug bindings", func(t *testing.T) {
		e.verifier.DebugBindings = true
		defer func() { e.verifier.DebugBindings = false }()
		c := oidctest.GitHubClaims(e.issuer.URL, "tokenward", now)
		c["repository"] = "acme/evil"
		got, b := e.login(t, "deploy-prod", sign(c))
		if got != 401 || !strings.Contains(string(b), `claim repository: got \"acme/evil\"`) {
			t.Fatalf("got %d %s; want 401 with the reason", got, b)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{"jwt": strings.Repeat("x", oidc.MaxJWTBytes+8<<10)}, 413)
		e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{"jwt": "x", "extra": 1}, 400)
		e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{}, 401)
	})

	// No identity token (nor its signature) reaches an audit entry.
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.audit {
		b, _ := json.Marshal(a)
		for _, j := range jwts {
			parts := strings.Split(j, ".")
			for _, p := range parts {
				if len(p) > 16 && strings.Contains(string(b), p) {
					t.Fatalf("audit entry %s holds part of an identity token", a.Action)
				}
			}
		}
		if strings.Contains(string(b), "twj_") {
			t.Fatalf("audit entry %s holds a minted token", a.Action)
		}
	}
}

// TestOIDCDisabled checks that a server without OIDC answers 503 on every
// OIDC route rather than pretending.
func TestOIDCDisabled(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{"jwt": "x"}, 503)
	e.mustDo(t, e.admin, "GET", "/v1/bindings", nil, 503)
}

// FuzzOIDCRequests posts arbitrary bodies to the binding and login routes:
// every answer is a client error or a success, never a server error, and a
// login never succeeds without a signed identity token.
func FuzzOIDCRequests(f *testing.F) {
	e := mustServeOIDC(f)
	e.mustDo(f, e.admin, "POST", "/v1/bindings", e.bindingBody("deploy-prod", "read:payments/prod/*"), 201)
	good, _ := json.Marshal(e.bindingBody("seed", "read:payments/prod/*"))
	f.Add(string(good))
	f.Add(`{"name":"x","preset":"github","audiences":["tokenward"],"claims":[{"claim":"ref","op":"one_of","values":["a","b*"]}],"grants":["read:p/e/*"],"ttl":"1m"}`)
	f.Add(`{"binding":"deploy-prod","jwt":"eyJhbGciOiJub25lIn0.e30."}`)
	f.Add(`{"claims":[{"claim":"","values":[]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/bindings", "/v1/auth/oidc/login"} {
			req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.admin)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode >= 500:
				t.Fatalf("POST %s: got %d %s; want no server error", path, resp.StatusCode, b)
			case path == "/v1/auth/oidc/login" && resp.StatusCode < 300:
				t.Fatalf("login succeeded with an unsigned body: %s", b)
			}
		}
	})
}
