package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

type oidcFixture struct {
	*fixture
	issuer *oidctest.Issuer
	now    time.Time
	logs   *bytes.Buffer
}

func mustOIDCFixture(t *testing.T, maxTTL time.Duration) *oidcFixture {
	t.Helper()
	f := &oidcFixture{fixture: mustFixture(t), issuer: oidctest.NewIssuer(t), now: time.Now().UTC().Truncate(time.Second), logs: &bytes.Buffer{}}
	f.core.Now = func() time.Time { return f.now }
	f.core.Logger = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.core.OIDC = &core.OIDC{Store: f.db, Verifier: oidc.NewVerifier(), MaxTTL: maxTTL}
	return f
}

func (f *oidcFixture) binding(name string, ttl time.Duration, grants ...string) *oidc.Binding {
	return &oidc.Binding{
		Name: name, Issuer: f.issuer.URL, Audiences: []string{"tokenward"}, Enabled: true, TTL: ttl,
		Claims: []oidc.ClaimCondition{{Claim: "repository", Op: oidc.MatchExact, Values: []string{"acme/payments"}}},
		Grants: mustGrants(grants...),
	}
}

// TestLoginOIDCMintsWithinBinding checks the minted token: kind jit, the
// binding's grants exactly, CI facts, and a lifetime of min(binding TTL,
// cap) after which it no longer authenticates.
func TestLoginOIDCMintsWithinBinding(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ttl     time.Duration
		maxTTL  time.Duration
		wantTTL time.Duration
	}{
		{"binding ttl", 10 * time.Minute, time.Hour, 10 * time.Minute},
		{"cap lowered after creation", 30 * time.Minute, 5 * time.Minute, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustOIDCFixture(t, time.Hour)
			f.put(t, "prod", "STRIPE_KEY", "sk_live_x")
			if _, err := f.core.CreateBinding(t.Context(), f.admin, f.binding("deploy", tc.ttl, "read:payments/prod/*")); err != nil {
				t.Fatal(err)
			}
			// A server restarted with a lower cap still caps old bindings.
			f.core.OIDC.MaxTTL = tc.maxTTL
			jwt := f.issuer.Sign(t, oidctest.GitHubClaims(f.issuer.URL, "tokenward", f.now))
			tok, secret, err := f.core.LoginOIDC(t.Context(), "deploy", jwt, "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			if tok.Kind != tokenward.TokenJIT || !strings.HasPrefix(secret, tokenward.PrefixJIT) || tok.CreatedBy != "binding:deploy" {
				t.Fatalf("got kind %s, prefix %.4s, created by %s; want jit, twj_, binding:deploy", tok.Kind, secret, tok.CreatedBy)
			}
			if got := tok.ExpiresAt.Sub(f.now); got != tc.wantTTL {
				t.Fatalf("got lifetime %s; want %s", got, tc.wantTTL)
			}
			if got := strings.Join(tok.Grants.Strings(), " "); got != "read:payments/prod/*" {
				t.Fatalf("got grants %s; want read:payments/prod/*", got)
			}
			if tok.CI["repository"] != "acme/payments" || tok.CI["sha"] == "" {
				t.Fatalf("got CI %v; want repository and sha", tok.CI)
			}
			me, err := f.core.Authenticate(t.Context(), secret, "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.core.GetSecret(t.Context(), me, "payments", "prod", "STRIPE_KEY", 0); err != nil {
				t.Fatalf("read within grants: %v", err)
			}
			if _, _, err := f.core.GetSecret(t.Context(), me, "payments", "dev", "STRIPE_KEY", 0); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
				t.Fatalf("read outside grants: got %v; want forbidden", err)
			}
			if _, _, err := f.core.CreateToken(t.Context(), me, core.CreateTokenInput{Name: "x", Grants: mustGrants("read:payments/*/*")}); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
				t.Fatalf("broader child: got %v; want forbidden", err)
			}
			if _, _, err := f.core.CreateToken(t.Context(), me, core.CreateTokenInput{Name: "y", Grants: tok.Grants, TTL: tc.wantTTL + time.Second}); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
				t.Fatalf("longer-lived child: got %v; want forbidden", err)
			}
			if _, _, err := f.core.CreateToken(t.Context(), me, core.CreateTokenInput{Name: "z", Kind: tokenward.TokenJIT, Grants: tok.Grants}); tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Fatalf("CreateToken kind jit: got %v; want invalid", err)
			}
			f.now = tok.ExpiresAt
			if _, err := f.core.Authenticate(t.Context(), secret, "192.0.2.1"); tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED {
				t.Fatalf("at expiry: got %v; want unauthorized", err)
			}
			if strings.Contains(f.logs.String(), secret) || strings.Contains(f.logs.String(), jwt[strings.LastIndexByte(jwt, '.')+1:]) {
				t.Fatal("the log holds the minted token or the identity token's signature")
			}
		})
	}
}

// TestBindingAuthorization checks that a binding never gives more than its
// creator administers, and that just-in-time tokens never manage bindings.
func TestBindingAuthorization(t *testing.T) {
	f := mustOIDCFixture(t, time.Hour)
	mk := func(name string, kindJIT bool, grants ...string) *tokenward.Token {
		tok, _, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: name, Grants: mustGrants(grants...)})
		if err != nil {
			t.Fatal(err)
		}
		if kindJIT {
			tok.Kind = tokenward.TokenJIT
		}
		return tok
	}
	prodAdmin := mk("prod-admin", false, "admin:payments/prod/*")
	reader := mk("reader", false, "read:payments/*/*")
	jitAdmin := mk("jit-admin", true, "admin:*/*/*")
	dbSecretsAdmin := mk("db-secrets-admin", false, "admin:*/*/db*")
	for _, tc := range []struct {
		name   string
		tok    *tokenward.Token
		grants []string
		want   string
	}{
		{"admin", f.admin, []string{"read:payments/*/*"}, ""},
		{"within", prodAdmin, []string{"read:payments/prod/STRIPE_*", "write:payments/prod/X"}, ""},
		{"one grant outside", prodAdmin, []string{"read:payments/prod/*", "read:payments/dev/*"}, tokenward.EFORBIDDEN},
		{"read is not admin", reader, []string{"read:payments/prod/*"}, tokenward.EFORBIDDEN},
		{"jit never", jitAdmin, []string{"read:payments/prod/*"}, tokenward.EFORBIDDEN},
		// A gateway grant names a route, not a secret: only admin over
		// everything gives one, never a name glob that matches the route.
		{"gateway needs full admin", dbSecretsAdmin, []string{"gateway:db-prod"}, tokenward.EFORBIDDEN},
		{"gateway glob needs full admin", dbSecretsAdmin, []string{"gateway:db*"}, tokenward.EFORBIDDEN},
		{"gateway by full admin", f.admin, []string{"gateway:db-prod"}, ""},
		{"ttl above cap", f.admin, nil, tokenward.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := f.binding(strings.ReplaceAll(tc.name, " ", "-"), 15*time.Minute, tc.grants...)
			if tc.grants == nil {
				b.Grants, b.TTL = mustGrants("read:payments/prod/*"), 2*time.Hour
			}
			_, err := f.core.CreateBinding(t.Context(), tc.tok, b)
			if got := tokenward.ErrorCode(err); got != tc.want {
				t.Fatalf("got %v (%q); want code %q", err, got, tc.want)
			}
		})
	}
	// The prod admin sees, disables and deletes only what it administers.
	list, err := f.core.Bindings(t.Context(), prodAdmin)
	if err != nil || len(list) != 1 || list[0].Name != "within" {
		t.Fatalf("got %d bindings, %v; want only within", len(list), err)
	}
	if _, err := f.core.SetBindingEnabled(t.Context(), prodAdmin, "admin", false); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
		t.Fatalf("disable another's binding: got %v; want forbidden", err)
	}
	if _, err := f.core.DeleteBinding(t.Context(), reader, "within"); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
		t.Fatalf("delete as reader: got %v; want forbidden", err)
	}
	if _, err := f.core.DeleteBinding(t.Context(), prodAdmin, "within"); err != nil {
		t.Fatalf("delete own: %v", err)
	}
	// The API cannot point the server at a key file.
	b := f.binding("file", time.Minute, "read:payments/prod/*")
	b.JWKSFile = "/etc/passwd"
	nb, err := f.core.CreateBinding(t.Context(), f.admin, b)
	if err != nil || nb.JWKSFile != "" {
		t.Fatalf("got %v, jwks file %q; want the file dropped", err, nb.JWKSFile)
	}
}

// TestLoginOIDCReplayConcurrent sends one identity token many times at
// once: exactly one exchange succeeds, whatever the interleaving.
func TestLoginOIDCReplayConcurrent(t *testing.T) {
	f := mustOIDCFixture(t, time.Hour)
	if _, err := f.core.CreateBinding(t.Context(), f.admin, f.binding("deploy", time.Minute, "read:payments/prod/*")); err != nil {
		t.Fatal(err)
	}
	jwt := f.issuer.Sign(t, oidctest.GitHubClaims(f.issuer.URL, "tokenward", f.now))
	var ok, replays atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, _, err := f.core.LoginOIDC(t.Context(), "", jwt, "192.0.2.1")
			var d *oidc.Denial
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &d) && d.Replay:
				replays.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || replays.Load() != 7 {
		t.Fatalf("got %d exchanges and %d replays; want 1 and 7", ok.Load(), replays.Load())
	}
	if !strings.Contains(f.logs.String(), "identity token replay refused") {
		t.Fatal("a replay was not logged")
	}
}

// TestOIDCNotEnabled checks that a core without OIDC refuses clearly.
func TestOIDCNotEnabled(t *testing.T) {
	f := mustFixture(t)
	if _, _, err := f.core.LoginOIDC(t.Context(), "", "x", ""); tokenward.ErrorCode(err) != tokenward.EUNAVAILABLE {
		t.Fatalf("got %v; want unavailable", err)
	}
}

func mustGrants(ss ...string) tokenward.Grants {
	gs, err := tokenward.ParseGrants(ss)
	if err != nil {
		panic(err)
	}
	return gs
}

// BenchmarkLoginOIDC measures one exchange on SQLite: RS256 signature
// check with cached keys, claim matching, the replay record (a write
// transaction) and minting (another write). Tokens are signed beforehand.
func BenchmarkLoginOIDC(b *testing.B) {
	f := &oidcFixture{issuer: oidctest.NewIssuer(b), now: time.Now().UTC(), logs: &bytes.Buffer{}}
	f.fixture = mustFixtureTB(b)
	f.core.Now = func() time.Time { return f.now }
	f.core.OIDC = &core.OIDC{Store: f.db, Verifier: oidc.NewVerifier(), MaxTTL: time.Hour}
	if _, err := f.core.CreateBinding(b.Context(), f.admin, f.binding("deploy", time.Minute, "read:payments/prod/*")); err != nil {
		b.Fatal(err)
	}
	jwts := make([]string, b.N)
	for i := range jwts {
		c := oidctest.GitHubClaims(f.issuer.URL, "tokenward", f.now)
		c["jti"] = fmt.Sprint("bench-", i)
		jwts[i] = f.issuer.Sign(b, c)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := f.core.LoginOIDC(b.Context(), "deploy", jwts[i], "192.0.2.1"); err != nil {
			b.Fatal(err)
		}
	}
}

// mustFixtureTB is mustFixture for benchmarks.
func mustFixtureTB(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{path: filepath.Join(tb.TempDir(), "tokenward.db"), key: seal.NewKey()}
	f.db = sqlite.NewDB(f.path)
	if err := f.db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.db.Close() })
	secret, err := core.Init(context.Background(), f.db, f.key, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if f.core, err = core.New(context.Background(), f.db, f.key); err != nil {
		tb.Fatal(err)
	}
	if f.admin, err = f.core.Authenticate(context.Background(), secret, "127.0.0.1"); err != nil {
		tb.Fatal(err)
	}
	return f
}
