package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
)

// TestPresentedToken: a revoked or expired token's refusal names the token
// (id and name, for the audit entry) and never holds the token itself; an
// unknown token's names nothing.
func TestPresentedToken(t *testing.T) {
	f := mustFixture(t)
	now := time.Now()
	f.core.Now = func() time.Time { return now }
	mint := func(name string, ttl time.Duration) (*tokenward.Token, string) {
		tok, secret, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: name, Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return tok, secret
	}
	revoked, revokedSecret := mint("revoked", 0)
	if _, err := f.core.RevokeToken(t.Context(), f.admin, revoked.ID); err != nil {
		t.Fatal(err)
	}
	expired, expiredSecret := mint("expired", time.Hour)
	_, goodSecret := mint("good", 0)
	unknown, _ := tokenward.NewTokenSecret(tokenward.TokenService)
	now = now.Add(2 * time.Hour)
	tests := []struct {
		name, secret     string
		wantID, wantName string
		wantOK           bool
	}{
		{"revoked", revokedSecret, revoked.ID, "revoked", true},
		{"expired", expiredSecret, expired.ID, "expired", true},
		{"unknown", unknown, "", "", false},
		{"malformed", "twa_nope", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.core.Authenticate(t.Context(), tc.secret, "10.0.0.1")
			if tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED {
				t.Fatalf("got %v; want EUNAUTHORIZED", err)
			}
			who, ok := core.PresentedToken(err)
			var id, name string
			if who != nil {
				id, name = who.ID, who.Name
				if len(who.Grants) != 0 {
					t.Fatalf("got grants %v on a refused token; want none", who.Grants)
				}
			}
			if id != tc.wantID || name != tc.wantName || ok != tc.wantOK {
				t.Fatalf("got %q %q %v; want %q %q %v", id, name, ok, tc.wantID, tc.wantName, tc.wantOK)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error holds the token")
			}
		})
	}
	if _, err := f.core.Authenticate(t.Context(), goodSecret, "10.0.0.1"); err != nil {
		t.Fatalf("good token: got %v; want nil", err)
	}
}

// TestAuditFilter: deny by default; narrower audit grants see only entries
// about what they cover.
func TestAuditFilter(t *testing.T) {
	f := mustFixture(t)
	tok := func(grants ...string) *tokenward.Token {
		g, err := tokenward.ParseGrants(grants)
		if err != nil {
			t.Fatal(err)
		}
		return &tokenward.Token{ID: "tok_x", Grants: g}
	}
	resources := []string{"payments/prod/KEY", "payments/prod", "payments", "payments/dev/KEY", "other/prod/KEY", "token:tok_1", "keys", ""}
	tests := []struct {
		name      string
		tok       *tokenward.Token
		forbidden bool
		all       bool
		visible   []string
	}{
		{"full audit", tok("audit:*/*/*"), false, true, nil},
		{"admin", tok("admin:*/*/*"), false, true, nil},
		{"no audit grant", tok("read:*/*/*"), true, false, nil},
		{"one env", tok("audit:payments/prod/*"), false, false, []string{"payments/prod/KEY", "payments/prod"}},
		{"one project", tok("audit:payments/*/*"), false, false, []string{"payments/prod/KEY", "payments/prod", "payments", "payments/dev/KEY"}},
		{"one secret", tok("audit:payments/prod/KEY"), false, false, []string{"payments/prod/KEY"}},
		{"project admin", tok("admin:payments/*/*"), false, false, []string{"payments/prod/KEY", "payments/prod", "payments", "payments/dev/KEY"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			filter, err := f.core.AuditFilter(tc.tok)
			if tc.forbidden {
				if tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
					t.Fatalf("got %v; want EFORBIDDEN", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (filter == nil) != tc.all {
				t.Fatalf("got all=%v; want %v", filter == nil, tc.all)
			}
			if tc.all {
				return
			}
			var got []string
			for _, r := range resources {
				if filter(&tokenward.AuditEntry{Resource: r}) {
					got = append(got, r)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.visible, ",") {
				t.Fatalf("got %v; want %v", got, tc.visible)
			}
		})
	}
	for _, tc := range []struct {
		grant string
		ok    bool
	}{{"audit:*/*/*", true}, {"admin:*/*/*", true}, {"audit:payments/*/*", false}} {
		if err := f.core.RequireAudit(tok(tc.grant)); (err == nil) != tc.ok {
			t.Errorf("RequireAudit(%s): got %v; want ok=%v", tc.grant, err, tc.ok)
		}
	}
}
