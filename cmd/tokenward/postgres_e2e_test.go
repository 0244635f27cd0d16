//go:build !tokenward_client

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// TestPostgresStorage drives the real binary on a real PostgreSQL: init
// and server with --storage, secrets and tokens that survive a restart, an
// audit trail that verifies, a second server beside the first, and the
// clear refusals — a second init, a migration while a server runs, a wrong
// master key, a bad URL — none of which repeats the password in the URL.
func TestPostgresStorage(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	const canary = "pg-e2e-secret-value-7f3a91"
	bin := filepath.Join(binDir, "tokenward")
	e := &rotEnv{t: t, dir: t.TempDir(), logs: &syncBuf{}}
	data := filepath.Join(e.dir, "data")
	run := func(env []string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}

	out, errs, err := run([]string{"TOKENWARD_STORAGE=" + url}, "init", "--data-dir", data)
	if err != nil {
		t.Fatalf("init --storage: %v\n%s", err, errs)
	}
	_, e.token, _ = strings.Cut(strings.TrimSpace(out), "TOKENWARD_TOKEN=")
	e.port = freePort(t)
	e.addr = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.args = []string{"--storage", url}
	t.Cleanup(e.stop)
	e.start()

	e.mustCLI("", "project", "create", "payments", "--envs", "prod")
	e.mustCLI(canary, "secret", "set", "payments/prod/STRIPE_KEY")
	e.mustCLI(canary+"-v2", "secret", "set", "payments/prod/STRIPE_KEY")
	if got := e.mustCLI("", "secret", "get", "payments/prod/STRIPE_KEY"); strings.TrimSpace(got) != canary+"-v2" {
		t.Fatalf("secret get: got %q; want the second value", got)
	}

	// A second server on the same database starts beside the first (its
	// own data directory, the same keys) and serves the same secrets; one
	// of the two leads the background jobs.
	second := &rotEnv{t: t, dir: t.TempDir(), logs: &syncBuf{}, token: e.token, args: []string{"--storage", url}}
	if err := os.MkdirAll(filepath.Join(second.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{keyFileName, "audit.key"} {
		copyFile(t, filepath.Join(data, f), filepath.Join(second.dir, "data", f))
	}
	second.port = freePort(t)
	second.addr = fmt.Sprintf("http://127.0.0.1:%d", second.port)
	t.Cleanup(second.stop)
	second.start()
	if got := second.mustCLI("", "secret", "get", "payments/prod/STRIPE_KEY"); strings.TrimSpace(got) != canary+"-v2" {
		t.Fatalf("second server: got %q; want the second value", got)
	}
	if got := strings.Count(e.logs.String()+second.logs.String(), "leading: this server runs the background jobs"); got != 1 {
		t.Errorf("leaders: got %d; want 1\nfirst:\n%s\nsecond:\n%s", got, e.logs, second.logs)
	}
	second.stopGracefully()
	// migrate refuses a database a server runs on.
	if _, errs, err := run(nil, "migrate", "--from", url, "--to", filepath.Join(e.dir, "copy")); err == nil || !strings.Contains(errs, "a tokenward server is running on this database") {
		t.Errorf("migrate from a served database: got %v, %q; want a refusal", err, errs)
	}

	// Restart: everything is still there, and the audit trail verifies.
	e.stop()
	e.start()
	if got := e.mustCLI("", "secret", "get", "payments/prod/STRIPE_KEY"); strings.TrimSpace(got) != canary+"-v2" {
		t.Fatalf("after restart: got %q; want the second value", got)
	}
	if out := e.mustCLI("", "audit", "verify"); !strings.Contains(out, "audit trail OK") {
		t.Errorf("audit verify: got %q; want the chain verified", out)
	}
	e.stop()

	// Refusals, none of which may print the password.
	// Another install's key: well-formed, and not the one that sealed the
	// keyring in the database.
	if _, errs, err := run(nil, "init", "--data-dir", filepath.Join(e.dir, "elsewhere")); err != nil {
		t.Fatalf("init elsewhere: %v\n%s", err, errs)
	}
	wrongKey, _ := os.ReadFile(filepath.Join(e.dir, "elsewhere", keyFileName))
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"init twice", nil, []string{"init", "--storage", url, "--data-dir", filepath.Join(e.dir, "again")}, "initialised already"},
		{"wrong master key", []string{"TOKENWARD_MASTER_KEY=" + strings.TrimSpace(string(wrongKey))}, []string{"server", "--storage", url, "--data-dir", data}, "master key does not open"},
		{"not a postgres URL", nil, []string{"server", "--storage", "mysql://u:" + pg.Password + "@h/db", "--data-dir", data}, "--storage: want a postgres://"},
		{"wrong password", nil, []string{"server", "--storage", pg.URL(pg.User, "not-the-"+pg.Password, "postgres"), "--data-dir", data}, "postgres"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, err := run(tc.env, tc.args...)
			if err == nil || !strings.Contains(errs, tc.want) {
				t.Errorf("got %v, %q; want an error containing %q", err, errs, tc.want)
			}
			if strings.Contains(errs, pg.Password) {
				t.Errorf("the error repeats the database password: %q", errs)
			}
		})
	}

	// Nothing in plaintext in the database.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM secret_versions WHERE project = 'payments'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("secret_versions: got %d rows, %v; want 2", n, err)
	}
	for _, q := range []string{`SELECT count(*) FROM secret_versions WHERE position($1::bytea in ciphertext) > 0`,
		`SELECT count(*) FROM audit_entries WHERE position($1 in row_to_json(audit_entries)::text) > 0`,
		`SELECT count(*) FROM audit_ci WHERE position($1 in ci) > 0`} {
		arg := any(canary)
		if strings.Contains(q, "bytea") {
			arg = []byte(canary)
		}
		if err := conn.QueryRow(context.Background(), q, arg).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: got %d, %v; want no plaintext", q, n, err)
		}
	}
}
