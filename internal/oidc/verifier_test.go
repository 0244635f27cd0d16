package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
)

// fixture is a verifier on a fixed clock in front of a fake issuer.
type fixture struct {
	iss *oidctest.Issuer
	v   *oidc.Verifier

	mu  sync.Mutex
	now time.Time
	jti atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{iss: oidctest.NewIssuer(t), now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	f.v = oidc.NewVerifier()
	f.v.Now = f.clock
	f.v.Replay = &oidc.MemoryReplayCache{Now: f.clock, Max: 1000}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// github returns GitHub-shaped claims with a fresh jti.
func (f *fixture) github() map[string]any {
	c := oidctest.GitHubClaims(f.iss.URL, "tokenward", f.clock())
	c["jti"] = fmt.Sprintf("jti-%d", f.jti.Add(1))
	return c
}

func (f *fixture) gitlab() map[string]any {
	c := oidctest.GitLabClaims(f.iss.URL, "tokenward", f.clock())
	c["jti"] = fmt.Sprintf("jti-%d", f.jti.Add(1))
	return c
}

func (f *fixture) githubBinding(t *testing.T) *oidc.Binding {
	t.Helper()
	return &oidc.Binding{
		Name:      "deploy-prod",
		Issuer:    f.iss.URL,
		Audiences: []string{"tokenward"},
		Claims:    conds(t, "repository=acme/payments", "ref=refs/heads/main", "environment=production"),
		Grants:    tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")},
		TTL:       15 * time.Minute,
		Enabled:   true,
	}
}

func (f *fixture) gitlabBinding(t *testing.T) *oidc.Binding {
	t.Helper()
	return &oidc.Binding{
		Name:      "gitlab-deploy",
		Issuer:    f.iss.URL,
		Audiences: []string{"https://tokenward.example.com", "tokenward"},
		Claims:    conds(t, "project_path=acme/payments", "ref_protected=true", "ref_type=branch", "environment=production|staging"),
		Grants:    tokenward.Grants{tokenward.MustParseGrant("read:payments/*/*")},
		TTL:       10 * time.Minute,
		Enabled:   true,
	}
}

func conds(t *testing.T, ss ...string) []oidc.ClaimCondition {
	t.Helper()
	cs, err := oidc.ParseClaimConditions(ss)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// assertDenied checks err is a generic-message Denial whose reason holds
// want, and that no part of token leaks into either.
func assertDenied(t *testing.T, err error, code, want, token string) *oidc.Denial {
	t.Helper()
	var d *oidc.Denial
	if !errors.As(err, &d) {
		t.Fatalf("got %v (%T); want a *oidc.Denial", err, err)
	}
	if d.Code != code || tokenward.ErrorCode(err) != code {
		t.Fatalf("got code %s (ErrorCode %s); want %s (reason %q)", d.Code, tokenward.ErrorCode(err), code, d.Reason)
	}
	if !strings.Contains(d.Reason, want) {
		t.Fatalf("got reason %q; want it to contain %q", d.Reason, want)
	}
	msg := tokenward.ErrorMessage(err)
	if code == tokenward.EUNAUTHORIZED && msg != "identity token rejected" {
		t.Fatalf("got caller message %q; want %q", msg, "identity token rejected")
	}
	assertNoTokenIn(t, token, d.Reason, err.Error(), msg)
	return d
}

// assertNoTokenIn fails if token, or any of its segments long enough to be
// distinctive, appears in one of texts.
func assertNoTokenIn(t *testing.T, token string, texts ...string) {
	t.Helper()
	if token == "" {
		return
	}
	parts := append(strings.Split(token, "."), token)
	for _, text := range texts {
		for _, p := range parts {
			if len(p) >= 16 && strings.Contains(text, p) {
				t.Fatalf("token material leaked into %q", text)
			}
		}
	}
}

func TestExchangeSuccessGitHub(t *testing.T) {
	f := newFixture(t)
	b := f.githubBinding(t)
	raw := f.iss.Sign(t, f.github())
	res, err := f.v.Exchange(context.Background(), []*oidc.Binding{b}, "", raw)
	if err != nil {
		t.Fatalf("got %v; want success", err)
	}
	if res.Binding != "deploy-prod" {
		t.Errorf("got binding %q; want deploy-prod", res.Binding)
	}
	if got, want := strings.Join(res.Grants.Strings(), ","), "read:payments/prod/*"; got != want {
		t.Errorf("got grants %s; want %s", got, want)
	}
	if got, want := res.ExpiresAt, f.clock().Add(15*time.Minute); !got.Equal(want) || res.TTL != 15*time.Minute {
		t.Errorf("got expiry %s TTL %s; want %s TTL 15m", got, res.TTL, want)
	}
	wantCI := map[string]string{
		"issuer":      f.iss.URL,
		"repository":  "acme/payments",
		"ref":         "refs/heads/main",
		"run_id":      "9876543210",
		"workflow":    "acme/payments/.github/workflows/deploy.yml@refs/heads/main",
		"actor":       "octocat",
		"sha":         "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
		"environment": "production",
		"subject":     "repo:acme/payments:environment:production",
	}
	for k, want := range wantCI {
		if got := res.CI[k]; got != want {
			t.Errorf("got CI[%s] %q; want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(res.ReplayID, "jti:") || len(res.ReplayID) != 4+64 {
		t.Errorf("got replay id %q; want jti: and a SHA-256 in hex", res.ReplayID)
	}
	if got, want := res.IdentityExpiresAt, f.clock().Add(5*time.Minute); !got.Equal(want) {
		t.Errorf("got identity expiry %s; want %s", got, want)
	}
	if err := tokenward.ValidateTokenName(res.TokenName()); err != nil {
		t.Errorf("got token name %q: %v; want a valid name", res.TokenName(), err)
	}
	// The grants are a copy: changing them does not change the binding.
	res.Grants[0].Env = "dev"
	if b.Grants[0].Env != "prod" {
		t.Errorf("got binding grant env %q after editing the result; want prod", b.Grants[0].Env)
	}
}

func TestExchangeSuccessGitLabES256(t *testing.T) {
	f := newFixture(t)
	esKid := f.iss.AddKey(t, jose.ES256, true)
	raw := f.iss.Sign(t, f.gitlab(), oidctest.WithKey(esKid))
	res, err := f.v.Exchange(context.Background(), []*oidc.Binding{f.githubBinding(t), f.gitlabBinding(t)}, "", raw)
	if err != nil {
		t.Fatalf("got %v; want success", err)
	}
	if res.Binding != "gitlab-deploy" {
		t.Fatalf("got binding %q; want gitlab-deploy", res.Binding)
	}
	for k, want := range map[string]string{"repository": "acme/payments", "run_id": "556677", "actor": "alice", "ref": "main", "workflow": "gitlab.com/acme/payments//.gitlab-ci.yml@refs/heads/main"} {
		if got := res.CI[k]; got != want {
			t.Errorf("got CI[%s] %q; want %q", k, got, want)
		}
	}
}

func TestExchangeDenials(t *testing.T) {
	f := newFixture(t)
	other := oidctest.NewIssuer(t)
	ctx := context.Background()
	now := f.clock()
	single := func(t *testing.T) []*oidc.Binding { return []*oidc.Binding{f.githubBinding(t)} }
	with := func(change func(c map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := f.github()
			change(c)
			return f.iss.Sign(t, c)
		}
	}
	tests := []struct {
		name     string
		token    func(t *testing.T) string
		bindings func(t *testing.T) []*oidc.Binding
		binding  string
		code     string
		want     string
	}{
		{name: "empty token", token: func(*testing.T) string { return "" }, want: "no identity token"},
		{name: "oversized token", token: func(*testing.T) string { return strings.Repeat("a", oidc.MaxJWTBytes+1) }, want: "bytes (at most"},
		{name: "garbage", token: func(*testing.T) string { return "not.a.jwt" }, want: "malformed identity token"},
		{name: "expired", token: with(func(c map[string]any) { c["exp"] = now.Add(-61 * time.Second).Unix() }), want: "expired at"},
		{name: "exp absent", token: with(func(c map[string]any) { delete(c, "exp") }), want: "exp: absent"},
		{name: "exp not a number", token: with(func(c map[string]any) { c["exp"] = "tomorrow" }), want: "failed to unmarshal claims"},
		{name: "not yet valid", token: with(func(c map[string]any) { c["nbf"] = now.Add(61 * time.Second).Unix() }), want: "not valid before"},
		{name: "iat in the future", token: with(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() }), want: "issued in the future"},
		{name: "wrong issuer", token: with(func(c map[string]any) { c["iss"] = "https://evil.example.com" }), want: `no enabled binding trusts issuer "https://evil.example.com"`},
		{name: "wrong issuer for named binding", binding: "deploy-prod", token: with(func(c map[string]any) { c["iss"] = "https://evil.example.com" }), want: "is not the binding's"},
		{name: "signed by another issuer's key", token: func(t *testing.T) string { return other.Sign(t, f.github()) }, want: "verification failed"},
		{name: "another issuer's key, our kid", token: func(t *testing.T) string {
			return other.Sign(t, f.github(), oidctest.WithHeaderKid(f.iss.CurrentKid()))
		}, want: "verifies the signature"},
		{name: "another issuer's key, no kid", token: func(t *testing.T) string {
			return other.Sign(t, f.github(), oidctest.WithHeaderKid(""))
		}, want: "verifies the signature"},
		{name: "wrong audience", token: with(func(c map[string]any) { c["aud"] = "sts.amazonaws.com" }), want: `audience ["sts.amazonaws.com"] is none of ["tokenward"]`},
		{name: "wrong audience list", token: with(func(c map[string]any) { c["aud"] = []string{"a", "b"} }), want: "is none of"},
		{name: "alg none", token: func(t *testing.T) string { return f.iss.NoneToken(t, f.github()) }, want: "algorithm not allowed"},
		{name: "HS256 algorithm confusion", token: func(t *testing.T) string { return f.iss.HMACConfusionToken(t, f.github()) }, want: "algorithm not allowed"},
		{name: "tampered payload", token: func(t *testing.T) string {
			c := f.github()
			c["repository"] = "acme/fork"
			raw := f.iss.Sign(t, c)
			c["repository"] = "acme/payments"
			return oidctest.Tamper(t, raw, c)
		}, want: "verification failed"},
		{name: "exact claim mismatch", token: with(func(c map[string]any) { c["ref"] = "refs/heads/dev" }), want: `claim ref: got "refs/heads/dev"; want "refs/heads/main"`},
		{name: "exact claim case differs", token: with(func(c map[string]any) { c["repository"] = "ACME/payments" }), want: `claim repository: got "ACME/payments"`},
		{name: "glob claim mismatch", bindings: func(t *testing.T) []*oidc.Binding {
			b := f.githubBinding(t)
			b.Claims = conds(t, "repository=acme/payments", "ref=refs/heads/release-*")
			return []*oidc.Binding{b}
		}, token: with(func(c map[string]any) {}), want: `claim ref: got "refs/heads/main"; want glob "refs/heads/release-*"`},
		{name: "one-of claim mismatch", bindings: func(t *testing.T) []*oidc.Binding {
			b := f.githubBinding(t)
			b.Claims = conds(t, "repository=acme/payments", "environment=staging|qa")
			return []*oidc.Binding{b}
		}, token: with(func(c map[string]any) {}), want: `claim environment: got "production"; want one of ["staging" "qa"]`},
		{name: "missing claim", token: with(func(c map[string]any) { delete(c, "environment") }), want: "claim environment: absent from the token"},
		{name: "null claim", token: with(func(c map[string]any) { c["environment"] = nil }), want: "claim environment: absent from the token"},
		{name: "claim not a scalar", token: with(func(c map[string]any) { c["environment"] = []string{"production"} }), want: "claim environment: not a string, number or boolean"},
		{name: "boolean claim mismatch", bindings: func(t *testing.T) []*oidc.Binding {
			b := f.githubBinding(t)
			b.Claims = conds(t, "repository=acme/payments", "ref_protected=true")
			return []*oidc.Binding{b}
		}, token: with(func(c map[string]any) { c["ref_protected"] = false }), want: `claim ref_protected: got "false"`},
		{name: "binding disabled, named", binding: "deploy-prod", bindings: func(t *testing.T) []*oidc.Binding {
			b := f.githubBinding(t)
			b.Enabled = false
			return []*oidc.Binding{b}
		}, token: with(func(c map[string]any) {}), want: "binding deploy-prod is disabled"},
		{name: "binding disabled, unnamed", bindings: func(t *testing.T) []*oidc.Binding {
			b := f.githubBinding(t)
			b.Enabled = false
			return []*oidc.Binding{b}
		}, token: with(func(c map[string]any) {}), want: "(disabled: deploy-prod)"},
		{name: "no such binding", binding: "nope", token: with(func(c map[string]any) {}), want: `no binding named "nope"`},
		{name: "several bindings match", bindings: func(t *testing.T) []*oidc.Binding {
			a := f.githubBinding(t)
			b := f.githubBinding(t)
			b.Name = "deploy-any"
			b.Claims = conds(t, "repository_owner=acme")
			return []*oidc.Binding{a, b}
		}, token: with(func(c map[string]any) {}), want: "several bindings match (deploy-prod, deploy-any); name one"},
		{name: "none of several match", bindings: func(t *testing.T) []*oidc.Binding {
			a := f.githubBinding(t)
			b := f.githubBinding(t)
			b.Name = "deploy-staging"
			b.Claims = conds(t, "environment=staging")
			return []*oidc.Binding{a, b}
		}, token: with(func(c map[string]any) { c["environment"] = "dev" }), want: `deploy-prod: claim environment: got "dev"; want "production"; deploy-staging: claim environment: got "dev"`},
		{name: "stored binding without conditions", bindings: func(t *testing.T) []*oidc.Binding {
			b := f.githubBinding(t)
			b.Claims = nil
			return []*oidc.Binding{b}
		}, token: with(func(c map[string]any) {}), want: "binding is malformed"},
		{name: "stored binding with zero TTL", bindings: func(t *testing.T) []*oidc.Binding {
			b := f.githubBinding(t)
			b.TTL = 0
			return []*oidc.Binding{b}
		}, token: with(func(c map[string]any) {}), want: "binding is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bindings := single(t)
			if tt.bindings != nil {
				bindings = tt.bindings(t)
			}
			code := tt.code
			if code == "" {
				code = tokenward.EUNAUTHORIZED
			}
			raw := tt.token(t)
			res, err := f.v.Exchange(ctx, bindings, tt.binding, raw)
			if err == nil {
				t.Fatalf("got success %+v; want denial %q", res, tt.want)
			}
			d := assertDenied(t, err, code, tt.want, raw)
			// Facts only from a verified token: a forged one's are made up.
			if d.CI != nil && (strings.Contains(tt.name, "tampered") || strings.Contains(tt.name, "alg") || strings.Contains(tt.name, "key")) {
				t.Fatalf("got CI facts %v from an unverified token; want none", d.CI)
			}
			if strings.Contains(tt.want, "claim ") && d.CI["issuer"] != f.iss.URL {
				t.Fatalf("got CI facts %v on a claim mismatch; want the verified facts", d.CI)
			}
		})
	}
}

// TestExchangeLeeway checks the 60 s leeway on both sides of its edge.
func TestExchangeLeeway(t *testing.T) {
	f := newFixture(t)
	b := []*oidc.Binding{f.githubBinding(t)}
	now := f.clock()
	for _, tt := range []struct {
		name   string
		claim  string
		at     time.Time
		wantOK bool
	}{
		{"exp 59s ago", "exp", now.Add(-59 * time.Second), true},
		{"exp 60s ago", "exp", now.Add(-60 * time.Second), false},
		{"nbf in 60s", "nbf", now.Add(60 * time.Second), true},
		{"nbf in 61s", "nbf", now.Add(61 * time.Second), false},
		{"iat in 60s", "iat", now.Add(60 * time.Second), true},
		{"iat in 61s", "iat", now.Add(61 * time.Second), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := f.github()
			c[tt.claim] = tt.at.Unix()
			_, err := f.v.Exchange(context.Background(), b, "", f.iss.Sign(t, c))
			if got := err == nil; got != tt.wantOK {
				t.Fatalf("got ok=%v (%v); want ok=%v", got, err, tt.wantOK)
			}
		})
	}
}

// TestReplayAcrossSkewedClocks: two servers share the replay record, one
// server's clock 50 s behind the other's (within the leeway). After the
// first server's clock has passed the token's exp plus the leeway, the
// second still takes the token as unexpired: the record must still be
// there, judged by the first server's clock, to refuse the replay.
func TestReplayAcrossSkewedClocks(t *testing.T) {
	f := newFixture(t)
	b := []*oidc.Binding{f.githubBinding(t)}
	behind := oidc.NewVerifier()
	behind.Now = func() time.Time { return f.clock().Add(-50 * time.Second) }
	behind.Replay = f.v.Replay // one store, swept by the first server's clock
	c := f.github()
	raw := f.iss.Sign(t, c)
	if _, err := f.v.Exchange(context.Background(), b, "", raw); err != nil {
		t.Fatal(err)
	}
	f.advance(5*time.Minute + oidc.DefaultLeeway + time.Second) // past exp + leeway here, 11 s past exp there
	_, err := behind.Exchange(context.Background(), b, "", raw)
	var d *oidc.Denial
	if !errors.As(err, &d) || !d.Replay {
		t.Fatalf("the replay on the server behind: got %v; want refused as a replay", err)
	}
}

func TestExchangeNamedBindingAmongSeveral(t *testing.T) {
	f := newFixture(t)
	a := f.githubBinding(t)
	b := f.githubBinding(t)
	b.Name = "deploy-any"
	b.Claims = conds(t, "repository_owner=acme")
	b.TTL = 5 * time.Minute
	res, err := f.v.Exchange(context.Background(), []*oidc.Binding{a, b}, "deploy-any", f.iss.Sign(t, f.github()))
	if err != nil {
		t.Fatalf("got %v; want success", err)
	}
	if res.Binding != "deploy-any" || res.TTL != 5*time.Minute {
		t.Fatalf("got binding %s TTL %s; want deploy-any 5m", res.Binding, res.TTL)
	}
}

func TestExchangeTTLCapped(t *testing.T) {
	f := newFixture(t)
	f.v.MaxTTL = 10 * time.Minute
	for _, tt := range []struct {
		ttl, want time.Duration
	}{
		{time.Hour, 10 * time.Minute},
		{10 * time.Minute, 10 * time.Minute},
		{3 * time.Minute, 3 * time.Minute},
	} {
		t.Run(tt.ttl.String(), func(t *testing.T) {
			b := f.githubBinding(t)
			b.TTL = tt.ttl
			res, err := f.v.Exchange(context.Background(), []*oidc.Binding{b}, "", f.iss.Sign(t, f.github()))
			if err != nil {
				t.Fatal(err)
			}
			if res.TTL != tt.want || !res.ExpiresAt.Equal(f.clock().Add(tt.want)) {
				t.Fatalf("got TTL %s expiry %s; want %s expiry %s", res.TTL, res.ExpiresAt, tt.want, f.clock().Add(tt.want))
			}
		})
	}
}

func TestExchangeReplay(t *testing.T) {
	for _, tt := range []struct {
		name       string
		change     func(c map[string]any)
		wantPrefix string
	}{
		{"with jti", func(map[string]any) {}, "jti:"},
		{"without jti", func(c map[string]any) { delete(c, "jti") }, "sha256:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := []*oidc.Binding{f.githubBinding(t)}
			c := f.github()
			tt.change(c)
			raw := f.iss.Sign(t, c)
			res, err := f.v.Exchange(context.Background(), b, "", raw)
			if err != nil {
				t.Fatalf("first use: got %v; want success", err)
			}
			if !strings.HasPrefix(res.ReplayID, tt.wantPrefix) {
				t.Fatalf("got replay id %q; want prefix %q", res.ReplayID, tt.wantPrefix)
			}
			f.advance(10 * time.Second)
			_, err = f.v.Exchange(context.Background(), b, "", raw)
			d := assertDenied(t, err, tokenward.EUNAUTHORIZED, "replay", raw)
			if !d.Replay {
				t.Fatalf("got Replay false; want true")
			}
			if got := d.CI["run_id"]; got != "9876543210" {
				t.Fatalf("got denial CI run_id %q; want 9876543210 (verified facts for the audit)", got)
			}
		})
	}
}

// TestExchangeReplayConcurrent sends one token from many goroutines: exactly
// one may win.
func TestExchangeReplayConcurrent(t *testing.T) {
	f := newFixture(t)
	b := []*oidc.Binding{f.githubBinding(t)}
	raw := f.iss.Sign(t, f.github())
	var wins, replays atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := f.v.Exchange(context.Background(), b, "", raw)
			var d *oidc.Denial
			switch {
			case err == nil:
				wins.Add(1)
			case errors.As(err, &d) && d.Replay:
				replays.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || replays.Load() != 7 {
		t.Fatalf("got %d wins and %d replays; want 1 and 7", wins.Load(), replays.Load())
	}
}

// TestKeyRotationAndRefreshRateLimit walks an issuer through a rotation and
// an attacker through a flood of made-up kids.
func TestKeyRotationAndRefreshRateLimit(t *testing.T) {
	f := newFixture(t)
	f.v.MinRefreshInterval = 30 * time.Second
	b := []*oidc.Binding{f.githubBinding(t)}
	ctx := context.Background()
	exchange := func(opts ...oidctest.SignOption) (string, error) {
		raw := f.iss.Sign(t, f.github(), opts...)
		_, err := f.v.Exchange(ctx, b, "", raw)
		return raw, err
	}
	wantFetches := func(step string, want int) {
		t.Helper()
		if got := f.iss.JWKSRequests(); got != want {
			t.Fatalf("%s: got %d JWKS fetches; want %d", step, got, want)
		}
		if got := f.v.KeyFetches(f.iss.URL, ""); got != want {
			t.Fatalf("%s: got KeyFetches %d; want %d", step, got, want)
		}
	}

	if _, err := exchange(); err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	wantFetches("first exchange", 1)
	if _, err := exchange(); err != nil {
		t.Fatalf("second exchange: %v", err)
	}
	wantFetches("cached keys", 1)
	if got := f.iss.DiscoveryRequests(); got != 1 {
		t.Fatalf("got %d discoveries; want 1 (the verifier is cached)", got)
	}

	// The issuer rotates: a token with the new kid triggers a refresh.
	f.advance(31 * time.Second)
	f.iss.Rotate(t, true)
	if _, err := exchange(); err != nil {
		t.Fatalf("after rotation: got %v; want the refresh to find the new key", err)
	}
	wantFetches("after rotation", 2)

	// A key the issuer never published: refused, and within the interval no
	// refetch however many made-up kids arrive.
	rogue := f.iss.AddKey(t, jose.RS256, false)
	for range 50 {
		raw, err := exchange(oidctest.WithKey(rogue))
		assertDenied(t, err, tokenward.EUNAUTHORIZED, "rate limited", raw)
	}
	wantFetches("flood of unknown kids", 2)

	// Published now, but the cache is fresh: still refused until the
	// interval has passed, then found.
	f.iss.Publish(rogue)
	if _, err := exchange(oidctest.WithKey(rogue)); err == nil {
		t.Fatalf("got success within the refresh interval; want refusal")
	}
	f.advance(30 * time.Second)
	if _, err := exchange(oidctest.WithKey(rogue)); err != nil {
		t.Fatalf("after the interval: got %v; want success", err)
	}
	wantFetches("after the interval", 3)

	// A retired key stops working once the set is refetched.
	f.iss.Retire(rogue)
	f.advance(31 * time.Second)
	unknown := f.iss.AddKey(t, jose.ES256, false)
	if _, err := exchange(oidctest.WithKey(unknown)); err == nil {
		t.Fatalf("got success with an unpublished key; want refusal")
	}
	wantFetches("refetch on unknown kid", 4)
	raw, err := exchange(oidctest.WithKey(rogue))
	assertDenied(t, err, tokenward.EUNAUTHORIZED, "verifies the signature", raw)
}

func TestStaticJWKSFile(t *testing.T) {
	f := newFixture(t)
	f.v.MinRefreshInterval = 30 * time.Second
	path := f.iss.WriteJWKS(t)
	// No network: the issuer's server is gone; only the file holds the keys.
	f.iss.Server.Close()
	b := f.githubBinding(t)
	b.JWKSFile = path
	bs := []*oidc.Binding{b}
	ctx := context.Background()

	if _, err := f.v.Exchange(ctx, bs, "", f.iss.Sign(t, f.github())); err != nil {
		t.Fatalf("got %v; want success from the JWKS file", err)
	}
	if got := f.iss.DiscoveryRequests() + f.iss.JWKSRequests(); got != 0 {
		t.Fatalf("got %d requests to the issuer; want 0 in file mode", got)
	}
	// A rotated key is picked up once the file is replaced and the refresh
	// interval has passed.
	f.iss.Rotate(t, false)
	raw := f.iss.Sign(t, f.github())
	_, err := f.v.Exchange(ctx, bs, "", raw)
	assertDenied(t, err, tokenward.EUNAUTHORIZED, "verifies the signature", raw)
	if err := os.WriteFile(path, f.iss.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	f.advance(31 * time.Second)
	if _, err := f.v.Exchange(ctx, bs, "", f.iss.Sign(t, f.github())); err != nil {
		t.Fatalf("after replacing the file: got %v; want success", err)
	}
	if got := f.v.KeyFetches(f.iss.URL, path); got != 2 {
		t.Fatalf("got %d file reads; want 2", got)
	}

	// A file with no usable key (a symmetric key is never trusted): the
	// keys are out of reach, as when the issuer is down, so the exchange
	// is unavailable rather than the token refused.
	bad := t.TempDir() + "/jwks.json"
	if err := os.WriteFile(bad, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	b2 := f.githubBinding(t)
	b2.JWKSFile = bad
	raw = f.iss.Sign(t, f.github())
	_, err = f.v.Exchange(ctx, []*oidc.Binding{b2}, "", raw)
	assertDenied(t, err, tokenward.EUNAVAILABLE, "no usable public signing key", raw)
}

// TestDiscoveryFailure checks an unreachable issuer gives EUNAVAILABLE and
// is not asked again within the refresh interval.
func TestDiscoveryFailure(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	f := newFixture(t)
	b := f.githubBinding(t)
	b.Issuer = srv.URL
	c := f.github()
	c["iss"] = srv.URL
	raw := f.iss.Sign(t, c)
	for i := range 3 {
		_, err := f.v.Exchange(context.Background(), []*oidc.Binding{b}, "", raw)
		assertDenied(t, err, tokenward.EUNAVAILABLE, "discovery", raw)
		if got := tokenward.ErrorMessage(err); !strings.Contains(got, "unavailable") {
			t.Fatalf("attempt %d: got caller message %q; want it to say unavailable", i, got)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Fatalf("got %d discovery requests; want 1 within the interval", got)
	}
	f.advance(oidc.DefaultMinRefreshInterval)
	_, _ = f.v.Exchange(context.Background(), []*oidc.Binding{b}, "", raw)
	if got := hits.Load(); got != 2 {
		t.Fatalf("got %d discovery requests; want 2 after the interval", got)
	}
}

// TestDiscoveryIssuerMismatch: a discovery document naming another issuer
// is refused (go-oidc checks it).
func TestDiscoveryIssuerMismatch(t *testing.T) {
	f := newFixture(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, f.iss.URL, f.iss.URL+"/.well-known/jwks")
	})
	proxy := httptest.NewServer(mux)
	defer proxy.Close()
	b := f.githubBinding(t)
	b.Issuer = proxy.URL
	c := f.github()
	c["iss"] = proxy.URL
	raw := f.iss.Sign(t, c)
	_, err := f.v.Exchange(context.Background(), []*oidc.Binding{b}, "", raw)
	assertDenied(t, err, tokenward.EUNAVAILABLE, "discovery", raw)
}

// TestDiscoveryPlainJWKSOnlyForALoopbackIssuer: an https issuer whose
// discovery document names a plain-http jwks_uri on loopback is refused:
// plain http is for a loopback issuer (tests, local fakes), and a remote
// issuer's document must not make the server fetch from its own loopback.
func TestDiscoveryPlainJWKSOnlyForALoopbackIssuer(t *testing.T) {
	f := newFixture(t)
	var jwksHits atomic.Int64
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jwksHits.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer jwks.Close()
	var issuer string
	tlsIssuer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, issuer, jwks.URL+"/jwks")
	}))
	defer tlsIssuer.Close()
	issuer = tlsIssuer.URL
	f.v.HTTPClient = tlsIssuer.Client()
	b := f.githubBinding(t)
	b.Issuer = issuer
	c := f.github()
	c["iss"] = issuer
	raw := f.iss.Sign(t, c)
	_, err := f.v.Exchange(context.Background(), []*oidc.Binding{b}, "", raw)
	assertDenied(t, err, tokenward.EUNAVAILABLE, "", raw)
	if n := jwksHits.Load(); n != 0 {
		t.Fatalf("the plain-http jwks_uri of an https issuer was fetched %d times; want refused before any fetch", n)
	}
}

func TestDebugBindings(t *testing.T) {
	f := newFixture(t)
	f.v.DebugBindings = true
	c := f.github()
	c["ref"] = "refs/heads/dev"
	raw := f.iss.Sign(t, c)
	_, err := f.v.Exchange(context.Background(), []*oidc.Binding{f.githubBinding(t)}, "", raw)
	msg := tokenward.ErrorMessage(err)
	if want := `identity token rejected: no binding matches: deploy-prod: claim ref: got "refs/heads/dev"`; !strings.HasPrefix(msg, want) {
		t.Fatalf("got caller message %q; want prefix %q", msg, want)
	}
	assertNoTokenIn(t, raw, msg, err.Error())
}

func TestNoReplayCacheRefuses(t *testing.T) {
	f := newFixture(t)
	f.v.Replay = nil
	raw := f.iss.Sign(t, f.github())
	_, err := f.v.Exchange(context.Background(), []*oidc.Binding{f.githubBinding(t)}, "", raw)
	assertDenied(t, err, tokenward.EUNAVAILABLE, "no replay cache", raw)
}

func BenchmarkExchange(b *testing.B) {
	iss := oidctest.NewIssuer(b)
	v := oidc.NewVerifier()
	binding := &oidc.Binding{
		Name: "deploy-prod", Issuer: iss.URL, Audiences: []string{"tokenward"},
		Claims: []oidc.ClaimCondition{{Claim: "repository", Op: oidc.MatchExact, Values: []string{"acme/payments"}}},
		Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, TTL: 15 * time.Minute, Enabled: true,
	}
	now := time.Now()
	tokens := make([]string, b.N)
	for i := range tokens {
		c := oidctest.GitHubClaims(iss.URL, "tokenward", now)
		c["jti"] = fmt.Sprint(i)
		tokens[i] = iss.Sign(b, c)
	}
	bs := []*oidc.Binding{binding}
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.Exchange(context.Background(), bs, "", tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzExchangeClaims signs arbitrary payloads with a trusted key: whatever
// the claims, Exchange must not panic, must grant only when the conditions
// truly hold, and must keep the token out of its reasons.
func FuzzExchangeClaims(f *testing.F) {
	iss := oidctest.NewIssuer(f)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	good, _ := json.Marshal(oidctest.GitHubClaims(iss.URL, "tokenward", now))
	f.Add(good)
	f.Add([]byte(`{"iss":"` + iss.URL + `","aud":["tokenward"],"exp":1e300,"repository":"acme/payments","ref":"refs/heads/main","environment":"production"}`))
	f.Add([]byte(`{"iss":"` + iss.URL + `","aud":"tokenward","exp":"x","repository":true}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"iss":"` + iss.URL + `","aud":"tokenward","exp":1795435200.5,"nbf":-1,"repository":"acme/payments","ref":"refs/heads/main","environment":"production","jti":{}}`))
	v := oidc.NewVerifier()
	v.Now = func() time.Time { return now }
	b := &oidc.Binding{
		Name: "deploy-prod", Issuer: iss.URL, Audiences: []string{"tokenward"},
		Claims: []oidc.ClaimCondition{
			{Claim: "repository", Op: oidc.MatchExact, Values: []string{"acme/payments"}},
			{Claim: "ref", Op: oidc.MatchGlob, Values: []string{"refs/heads/ma*"}},
			{Claim: "environment", Op: oidc.MatchOneOf, Values: []string{"production", "staging"}},
		},
		Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, TTL: 15 * time.Minute, Enabled: true,
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		raw := iss.SignPayload(t, payload)
		v.Replay = oidc.NewMemoryReplayCache()
		res, err := v.Exchange(context.Background(), []*oidc.Binding{b}, "", raw)
		if err != nil {
			var d *oidc.Denial
			if !errors.As(err, &d) {
				t.Fatalf("got %T; want *oidc.Denial", err)
			}
			assertNoTokenIn(t, raw, d.Reason, err.Error())
			return
		}
		// A map, like the verifier: exact key names, the last duplicate wins.
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("granted a token whose payload does not decode: %v", err)
		}
		repo, _ := c["repository"].(string)
		ref, _ := c["ref"].(string)
		env, _ := c["environment"].(string)
		if repo != "acme/payments" || !strings.HasPrefix(ref, "refs/heads/ma") || (env != "production" && env != "staging") {
			t.Fatalf("granted %+v for claims %v", res, c)
		}
	})
}
