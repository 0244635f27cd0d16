package rotate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
	. "github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/rotate/pgrotate"
)

// The postgres rotator (package pgrotate) driven by the machine over the
// real store and a real cluster: these tests live here, beside the
// machine's helpers.

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func pgCanLogin(t *testing.T, value string, format string, base string) error {
	t.Helper()
	dsn := value // a url value is the DSN itself
	if format == "json" {
		login, _, err := pgCredential(value, format, base)
		if err != nil {
			t.Fatal(err)
		}
		dsn = login
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// the login role reaches the group's table through membership
	var n int
	return conn.QueryRow(ctx, "SELECT count(*) FROM app_data").Scan(&n)
}

func TestPostgresRotatorAgainstRealCluster(t *testing.T) {
	c := pgtest.Shared(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	defer admin.Close(ctx)
	// Log every statement, so the test can show ALTER ROLE never carried a
	// plaintext password.
	for _, stmt := range []string{"ALTER SYSTEM SET log_statement = 'all'", "SELECT pg_reload_conf()"} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	tests := []struct {
		name, group, format string
	}{
		{"url format", "app", "url"},
		// a group name that needs quoting proves identifiers are quoted
		{"json format, odd role name", `we"ird Role`, "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, stmt := range []string{
				"DROP TABLE IF EXISTS app_data",
				"CREATE TABLE app_data (id int)",
				"DROP ROLE IF EXISTS " + ident(tt.group+"_a"),
				"DROP ROLE IF EXISTS " + ident(tt.group+"_b"),
				"DROP ROLE IF EXISTS " + ident(tt.group+"_legacy"),
				"DROP ROLE IF EXISTS " + ident(tt.group),
				"CREATE ROLE " + ident(tt.group) + " NOLOGIN",
				"GRANT SELECT ON app_data TO " + ident(tt.group),
				// the app's login before rotation was set up
				"CREATE ROLE " + ident(tt.group+"_legacy") + " LOGIN PASSWORD 'legacy-password' IN ROLE " + ident(tt.group),
			} {
				if _, err := admin.Exec(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			base := "postgres://" + c.Host + ":" + itoa(c.Port) + "/postgres?sslmode=disable"
			pg := &pgrotate.Rotator{}
			e := newEnv(t, map[string]Rotator{"postgres": pg})
			pg.Secrets = e.secrets
			e.mustPut(t, "payments/prod/DB_ADMIN_URL", c.DSN)
			const path = "payments/prod/DB_URL"
			legacy := c.URL(tt.group+"_legacy", "legacy-password", "postgres")
			if tt.format == "json" {
				b, _ := json.Marshal(map[string]string{"user": tt.group + "_legacy", "password": "legacy-password"})
				legacy = string(b)
			}
			if err := pgCanLogin(t, legacy, tt.format, base); err != nil {
				t.Fatalf("login with the app's original value: %v", err)
			}
			e.mustPut(t, path, legacy)
			e.mustPolicy(t, &Policy{Path: path, Every: 30 * 24 * time.Hour, Grace: 24 * time.Hour, Rotator: "postgres",
				Config: map[string]string{"dsn_secret": "payments/prod/DB_ADMIN_URL", "role": tt.group, "url": base, "format": tt.format}})

			rotate := func() (newV, oldV string) {
				t.Helper()
				old := e.label(t, path, LabelCurrent)
				r, err := e.m.RotateNow(ctx, path, "test")
				if err != nil {
					t.Fatalf("RotateNow: %v", err)
				}
				if r.Step != StepRevoke {
					t.Fatalf("step: got %s; want revoke (grace)", r.Step)
				}
				return e.label(t, path, LabelCurrent), old
			}

			// First rotation: from the app's own role to the first of the
			// two; after grace the original login is revoked.
			v1, first := rotate()
			if first != legacy {
				t.Fatalf("first rotation: got another old value; want the app's original one")
			}
			if err := pgCanLogin(t, v1, tt.format, base); err != nil {
				t.Fatalf("login with first value: %v", err)
			}
			e.clock.Add(24 * time.Hour)
			if err := e.m.Resume(ctx); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			if err := pgCanLogin(t, legacy, tt.format, base); err == nil {
				t.Fatalf("login with the original value after grace: got success; want failure")
			}

			// Second: the other role; both log in during grace.
			v2, old := rotate()
			if old != v1 || v2 == v1 {
				t.Fatalf("second rotation: got old %t new-differs %t; want the first value as old and a new value", old == v1, v2 != v1)
			}
			for name, v := range map[string]string{"new": v2, "old during grace": v1} {
				if err := pgCanLogin(t, v, tt.format, base); err != nil {
					t.Fatalf("login with %s value: got %v; want success", name, err)
				}
			}
			e.clock.Add(24 * time.Hour)
			if err := e.m.Resume(ctx); err != nil {
				t.Fatalf("Resume after grace: %v", err)
			}
			if err := pgCanLogin(t, v1, tt.format, base); err == nil {
				t.Fatalf("login with old value after revoke: got success; want failure")
			} else if strings.Contains(err.Error(), passwordOf(t, v1, tt.format)) {
				t.Fatalf("login error holds the password")
			}
			if err := pgCanLogin(t, v2, tt.format, base); err != nil {
				t.Fatalf("login with current value after revoke: %v", err)
			}

			// Third: back to the first role with a fresh password; the
			// revoked first password stays dead.
			v3, _ := rotate()
			if err := pgCanLogin(t, v3, tt.format, base); err != nil {
				t.Fatalf("login with third value: %v", err)
			}
			if err := pgCanLogin(t, v1, tt.format, base); err == nil {
				t.Fatalf("login with first value after its role got a new password: got success; want failure")
			}
			if err := pgCanLogin(t, v2, tt.format, base); err != nil {
				t.Fatalf("login with second value during grace: %v", err)
			}
			serverLog, err := os.ReadFile(c.LogFile)
			if err != nil {
				t.Fatalf("read server log: %v", err)
			}
			if !strings.Contains(string(serverLog), "SCRAM-SHA-256$") {
				t.Fatalf("server log: got no logged ALTER ROLE; want statements logged (the check below would be empty)")
			}
			for _, v := range []string{v1, v2, v3} {
				pw := passwordOf(t, v, tt.format)
				if strings.Contains(e.logs.String(), pw) || strings.Contains(string(serverLog), pw) {
					t.Fatalf("a password appears in the machine's or the server's log")
				}
			}
		})
	}
}

func passwordOf(t *testing.T, v, format string) string {
	t.Helper()
	_, pw, err := pgCredential(v, format, "postgres://127.0.0.1/postgres")
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

// pgCredential decodes a postgres rotator value in format (url or json)
// into the URL that logs in with it at base, and its password.
func pgCredential(value, format, base string) (login, password string, err error) {
	u, err := url.Parse(value)
	if format == "json" {
		var c struct{ User, Password string }
		if err := json.Unmarshal([]byte(value), &c); err != nil {
			return "", "", err
		}
		if u, err = url.Parse(base); err == nil {
			u.User = url.UserPassword(c.User, c.Password)
		}
	}
	if err != nil || u.User == nil {
		return "", "", errors.New("not a login URL")
	}
	password, _ = u.User.Password()
	return u.String(), password, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func TestPostgresSetFailsWithoutLeakingPassword(t *testing.T) {
	c := pgtest.Shared(t)
	ctx := context.Background()
	pg := &pgrotate.Rotator{}
	e := newEnv(t, map[string]Rotator{"postgres": pg})
	pg.Secrets = e.secrets
	// an admin DSN with a wrong password: connecting fails
	bad := c.URL(c.User, "wrong-admin-password-123", "postgres")
	e.mustPut(t, "p/e/ADMIN", bad)
	cfg := map[string]string{"dsn_secret": "p/e/ADMIN", "role": "app", "url": "postgres://127.0.0.1:1/postgres"}
	req := &Request{RotationID: "rot_x", Path: "p/e/DB", Config: cfg}
	v, err := pg.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	req.Pending = v
	err = pg.Set(ctx, req)
	if err == nil {
		t.Fatalf("Set with a bad admin password: got nil; want an error")
	}
	for _, secret := range []string{passwordOf(t, string(v), "url"), "wrong-admin-password-123"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("Set error %q holds a password", err)
		}
	}
	err = pg.Test(ctx, req)
	if err == nil || strings.Contains(err.Error(), passwordOf(t, string(v), "url")) {
		t.Fatalf("Test against a closed port: got %v; want an error without the password", err)
	}
}
