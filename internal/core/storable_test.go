package core_test

import (
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// TestTokenTTLRange: a token is created only with a lifetime the
// store keeps as given. Both stores keep times as Unix nanoseconds
// (year 1678 to 2262); a TTL that ends after that was stored wrapped into
// the past, and the token the caller was handed was refused as "expired"
// on its first use while its record said it lived for centuries.
func TestTokenTTLRange(t *testing.T) {
	f := mustFixture(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.core.Now = func() time.Time { return now }
	const year = 365 * 24 * time.Hour
	grant := tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}
	for i, tc := range []struct {
		name string
		ttl  time.Duration
		code string // "": created and usable; else refused with it, or created and usable
	}{
		{"an hour", time.Hour, ""},
		{"no ttl", 0, ""},
		{"200 years", 200 * year, ""},
		{"236 years, within range", 236 * year, ""},
		{"237 years, past 2262", 237 * year, tokenward.EINVALID},
		{"250 years", 250 * year, tokenward.EINVALID},
		{"the largest duration", time.Duration(1<<63 - 1), tokenward.EINVALID},
		{"negative", -time.Second, tokenward.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, raw, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: "ttl-" + string(rune('a'+i)), Grants: grant, TTL: tc.ttl})
			if tc.code != "" && err != nil {
				if got := tokenward.ErrorCode(err); got != tc.code {
					t.Fatalf("create: got %v; want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			got, err := f.core.Authenticate(t.Context(), raw, "")
			if err != nil {
				t.Fatalf("authenticate a token created with ttl %s (expires %s): %v", tc.ttl, tok.ExpiresAt, err)
			}
			if !got.ExpiresAt.Equal(tok.ExpiresAt) {
				t.Fatalf("stored expiry %s; the creator was told %s", got.ExpiresAt, tok.ExpiresAt)
			}
		})
	}
}

// TestSecretExpiryRange: a secret's expiry is kept as written, or
// refused. The stores keep it as Unix nanoseconds, so one outside 1678 to
// 2262 (9999-12-31, a common "never") came back as another date, in the
// past for some: the secret then reads as expired.
func TestSecretExpiryRange(t *testing.T) {
	f := mustFixture(t)
	other := sqlite.NewDB(f.path) // reads the file, not this handle's read cache
	if err := other.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	for i, tc := range []struct {
		name string
		at   time.Time
		code string // "": kept as written; else refused with it, or kept as written
	}{
		{"2030", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), ""},
		{"2262-04-11", time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC), ""},
		{"2262-04-12", time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC), tokenward.EINVALID},
		{"2300", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), tokenward.EINVALID},
		{"9999-12-31", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), tokenward.EINVALID},
		{"1600", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), tokenward.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "EXP_" + string(rune('A'+i))
			_, err := f.core.PutSecret(t.Context(), f.admin, core.PutSecretInput{Project: "payments", Env: "prod", Name: name, Value: []byte("v"), ExpiresAt: &tc.at})
			if tc.code != "" && err != nil {
				if got := tokenward.ErrorCode(err); got != tc.code {
					t.Fatalf("put: got %v; want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			s, err := other.Secret(t.Context(), "payments", "prod", name)
			if err != nil {
				t.Fatal(err)
			}
			if !s.ExpiresAt.Equal(tc.at) {
				t.Fatalf("wrote expiry %s; stored %s", tc.at, s.ExpiresAt)
			}
		})
	}
}
