package pgrotate

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgrole"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/rotate"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type adminSecret string

func (s adminSecret) ReadSecret(context.Context, string) ([]byte, error) { return []byte(s), nil }

// PostgreSQL reads a role name of more than 63 bytes as its first 63, both
// in SQL (ALTER ROLE, a name parameter) and in a login's user: a value whose
// user is "<63-byte role>x" logs in as that role. The rotator compared the
// names as Go strings, so such a value passed for another role: Create gave
// the role in use a new password (the old credential died at once, no
// grace) and Revoke, whose same-role guard it passed, then took the login
// of the credential just made current.
func TestRoleNamePostgresTruncates(t *testing.T) {
	c := pgtest.Shared(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	group := strings.Repeat("g", 61) // the default roles g…g_a, g…g_b are 63 bytes
	base := "postgres://" + c.Host + ":" + strconv.Itoa(c.Port) + "/postgres?sslmode=disable"
	cfg := map[string]string{"dsn_secret": "p/e/ADMIN", "role": group, "url": base}
	pc, err := parsePGConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"DROP ROLE IF EXISTS " + pgrole.QuoteIdent(pc.roles[0]),
		"DROP ROLE IF EXISTS " + pgrole.QuoteIdent(pc.roles[1]),
		"DROP ROLE IF EXISTS " + pgrole.QuoteIdent(group),
		"CREATE ROLE " + pgrole.QuoteIdent(group) + " NOLOGIN",
		"CREATE ROLE " + pgrole.QuoteIdent(pc.roles[0]) + " LOGIN PASSWORD 'legacy-password' IN ROLE " + pgrole.QuoteIdent(group),
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	// login reads a value itself: decode may refuse it
	login := func(v []byte) error {
		u, err := url.Parse(string(v))
		if err != nil || u.User == nil {
			t.Fatalf("value is not a URL with a user")
		}
		return pgLogin(ctx, u.String(), u.User.Username())
	}
	tests := []struct {
		name string
		user string // the current value's user
	}{
		{"one byte past the role", pc.roles[0] + "x"},
		{"a multi-byte tail", pc.roles[0] + "é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := admin.Exec(ctx, "ALTER ROLE "+pgrole.QuoteIdent(pc.roles[0])+" WITH LOGIN PASSWORD 'legacy-password'"); err != nil {
				t.Fatal(err)
			}
			current := pc.encode(pgCredential{User: tt.user, Password: "legacy-password"})
			if err := login(current); err != nil {
				t.Fatalf("login with the current value: %v; want success (PostgreSQL reads the user's first 63 bytes)", err)
			}
			p := &Rotator{Secrets: adminSecret(c.DSN)}
			pending, err := p.Create(ctx, &rotate.Request{Config: cfg, Current: current})
			if err != nil {
				// refusing a user PostgreSQL would read as another name is fine
				if tokenward.ErrorCode(err) != tokenward.EINVALID {
					t.Fatalf("Create: got %v; want a new value or invalid", err)
				}
				return
			}
			req := &rotate.Request{Config: cfg, Current: current, Pending: pending}
			if err := p.Set(ctx, req); err != nil {
				t.Fatalf("Set: %v", err)
			}
			if err := p.Test(ctx, req); err != nil {
				t.Fatalf("Test: %v", err)
			}
			if err := login(current); err != nil {
				t.Errorf("login with the current value during grace: %v; want success (the pending value must be the other role)", err)
			}
			revokeErr := p.Revoke(ctx, req)
			if err := login(pending); err != nil {
				t.Errorf("login with the new value after Revoke (Revoke: %v): %v; want success", revokeErr, err)
			}
		})
	}
}

func TestDecodeRefusesNamesPostgresCannotHold(t *testing.T) {
	cfg := map[string]string{"dsn_secret": "p/e/ADMIN", "role": "app", "url": "postgres://db:5432/app"}
	for _, format := range []string{"url", "json"} {
		cfg["format"] = format
		pc, err := parsePGConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, user string
			ok         bool
		}{
			{"role", "app_a", true},
			{"63 bytes", strings.Repeat("a", 63), true},
			{"64 bytes", strings.Repeat("a", 64), false},
			{"NUL", "app_a\x00", false},
		}
		for _, tt := range tests {
			_, err := pc.decode(pc.encode(pgCredential{User: tt.user, Password: "x"}))
			if (err == nil) != tt.ok || (err != nil && tokenward.ErrorCode(err) != tokenward.EINVALID) {
				t.Errorf("%s %s: decode: got %v; want ok=%v", format, tt.name, err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "\x00") {
				t.Errorf("%s %s: error holds a NUL byte", format, tt.name)
			}
		}
	}
}
