package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
)

func TestRedactTokens(t *testing.T) {
	tok, _ := tokenward.NewTokenSecret(tokenward.TokenAdmin)
	jit, _ := tokenward.NewTokenSecret(tokenward.TokenJIT)
	tests := []struct{ in, want string }{
		{"", ""},
		{"payments/prod/STRIPE_KEY", "payments/prod/STRIPE_KEY"},
		{"token:tok_0ACViCAqH5Z4CLAqX", "token:tok_0ACViCAqH5Z4CLAqX"},
		{"token:" + tok, "token:twa_[redacted]"},
		{`token name "` + tok + `" has a character outside`, `token name "twa_[redacted]" has a character outside`},
		{tok[:30], "twa_[redacted]"},             // truncated
		{tok + jit, "twa_[redacted]_[redacted]"}, // pasted together
		{tok + " " + jit, "twa_[redacted] twj_[redacted]"},
		{"tws_short", "tws_short"},
		{"twx_" + strings.Repeat("a", 40), "twx_" + strings.Repeat("a", 40)},
	}
	for _, tc := range tests {
		if got := audit.RedactTokens(tc.in); got != tc.want {
			t.Errorf("RedactTokens(%.40q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

// TestBrokerRedactsTokens: a token that reached an entry's fields (a
// mistaken `token show <token>`) is redacted before the entry is chained
// and stored.
func TestBrokerRedactsTokens(t *testing.T) {
	tok, _ := tokenward.NewTokenSecret(tokenward.TokenService)
	store := audit.NewFileStore(t.TempDir())
	if err := store.Open(); err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b := audit.NewBroker(store, nil)
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &tokenward.AuditEntry{Time: time.Now(), Action: "token.read", Resource: "token:" + tok, Outcome: tokenward.OutcomeError,
		Reason: "token name " + tok + " is bad", UserAgent: "curl " + tok, Meta: map[string]string{"x": tok}, CI: map[string]string{"ref": tok}}
	if err := b.Record(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	b.Close(context.Background())
	for got, err := range store.AuditEntries(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		all := got.Resource + got.Reason + got.UserAgent + got.Meta["x"] + got.CI["ref"]
		if strings.Contains(all, tok[4:24]) {
			t.Fatalf("stored entry holds the token: %+v", got)
		}
		if got.Resource != "token:tws_[redacted]" || audit.HashEntry(got) != got.Hash {
			t.Fatalf("got resource %q, hash ok %v; want token:tws_[redacted], true", got.Resource, audit.HashEntry(got) == got.Hash)
		}
	}
}

// FuzzRedactTokens: no token-like run survives, and text without one is
// returned unchanged.
func FuzzRedactTokens(f *testing.F) {
	tok, _ := tokenward.NewTokenSecret(tokenward.TokenService)
	for _, s := range []string{"", "token:" + tok, tok + tok, "twa_" + strings.Repeat("x", 19), "tw" + tok, "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := audit.RedactTokens(s)
		if again := audit.RedactTokens(got); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
		for _, p := range []string{"twa_", "tws_", "twj_"} {
			for i := strings.Index(got, p); i >= 0; {
				run := 0
				for j := i + 4; j < len(got) && (got[j] >= '0' && got[j] <= '9' || got[j] >= 'a' && got[j] <= 'z' || got[j] >= 'A' && got[j] <= 'Z'); j++ {
					run++
				}
				if run >= 20 {
					t.Fatalf("token-like run survives in %q", got)
				}
				k := strings.Index(got[i+1:], p)
				if k < 0 {
					break
				}
				i += 1 + k
			}
		}
		if !strings.Contains(got, "[redacted]") && got != s {
			t.Fatalf("changed %q to %q without redacting", s, got)
		}
	})
}
