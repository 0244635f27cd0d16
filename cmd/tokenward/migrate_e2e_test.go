//go:build !tokenward_client

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/rotate"
)

// migrateOut is `tokenward migrate -o json`.
type migrateOut struct {
	SchemaVersion int64 `json:"schema_version"`
	Tables        []struct {
		Table      string `json:"table"`
		Rows       int64  `json:"rows"`
		Checksum   string `json:"checksum"`
		ChecksumOK bool   `json:"checksum_ok"`
	} `json:"tables"`
	Audit migrateAudit `json:"audit"`
}

// runBin runs the real binary with extra environment variables.
func runBin(env []string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(filepath.Join(binDir, "tokenward"), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// stopGracefully stops the server the way an operator does, so the audit
// journal is ingested and a final checkpoint signed.
func (e *rotEnv) stopGracefully() {
	e.t.Helper()
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exit:
	case <-time.After(20 * time.Second):
		e.t.Fatalf("server did not stop on SIGTERM:\n%s", e.logs)
	}
	e.cmd = nil
}

// installState is what a migrated install must still answer.
type installState struct {
	values map[string]string // secret path → current value
}

// checkInstall checks, through a running server, every secret value, that
// the old tokens still authenticate, the binding, and the audit chain.
func checkInstall(t *testing.T, e *rotEnv, want installState, ciToken, seedToken string) {
	t.Helper()
	for path, v := range want.values {
		if got := e.mustCLI("", "secret", "get", path); got != v {
			t.Errorf("secret get %s: got %q; want %q", path, got, v)
		}
	}
	for name, tok := range map[string]string{"ci": ciToken, "seed": seedToken, "rotated": want.values["payments/prod/DEPLOY_TOKEN"]} {
		out, errs, err := runBin([]string{"TOKENWARD_ADDR=" + e.addr, "TOKENWARD_TOKEN=" + tok}, "secret", "list", "payments/prod")
		if err != nil || !strings.Contains(out, "STRIPE_KEY") {
			t.Errorf("token %s: secret list: got %v, %q, %q; want it to authenticate and list STRIPE_KEY", name, err, out, errs)
		}
	}
	if out := e.mustCLI("", "binding", "list"); !strings.Contains(out, "deploy-prod") {
		t.Errorf("binding list: got %q; want deploy-prod", out)
	}
	if out := e.mustCLI("", "rotation", "list"); !strings.Contains(out, "payments/prod/DEPLOY_TOKEN") {
		t.Errorf("rotation list: got %q; want the policy on payments/prod/DEPLOY_TOKEN", out)
	}
	// The rotation is in its grace period: PREVIOUS is the seed token.
	if h := e.history("payments/prod/DEPLOY_TOKEN"); len(h) != 1 || h[0].Step != rotate.StepRevoke {
		t.Errorf("rotation history: got %+v; want one rotation waiting to revoke", h)
	}
	if got := e.mustCLI("", "secret", "get", "payments/prod/DEPLOY_TOKEN", "--version", "previous"); got != seedToken {
		t.Errorf("secret get --version previous: got %.8q…; want the seed token", got)
	}
	if out := e.mustCLI("", "audit", "verify"); !strings.Contains(out, "audit trail OK") {
		t.Errorf("audit verify: got %q; want the chain verified", out)
	}
}

// mustMigrate runs migrate -o json and wants every table's checksum to
// match, the tables the test populated to hold rows, and the audit chain
// verified with its checkpoints.
func mustMigrate(t *testing.T, from, to string, values map[string]string) {
	t.Helper()
	out, errs, err := runBin(nil, "migrate", "--from", from, "--to", to, "-o", "json")
	if err != nil {
		t.Fatalf("migrate --from %s: %v\n%s", from, err, errs)
	}
	for path, v := range values {
		if strings.Contains(out+errs, v) {
			t.Errorf("migrate's output holds the value of %s", path)
		}
	}
	var m migrateOut
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("migrate -o json: %v\n%s", err, out)
	}
	populated := []string{"keyring", "projects", "environments", "data_keys", "secrets", "secret_versions", "tokens",
		"secret_labels", "rotations", "rotation_policies", "oidc_bindings", "audit_entries", "audit_checkpoints",
		"archived_envs", "archived_secrets", "archived_secret_versions", "monitor_state"}
	rows := map[string]int64{}
	for _, tb := range m.Tables {
		rows[tb.Table] = tb.Rows
		if !tb.ChecksumOK || len(tb.Checksum) != 64 {
			t.Errorf("table %s: checksum %q ok=%v; want a matching SHA-256", tb.Table, tb.Checksum, tb.ChecksumOK)
		}
	}
	for _, name := range populated {
		if rows[name] == 0 {
			t.Errorf("table %s: got %d rows copied (present: %v); want some", name, rows[name], rows)
		}
	}
	if _, ok := rows["schema_migrations"]; ok {
		t.Errorf("schema_migrations was copied; want it made by the target's own migrations")
	}
	if !m.Audit.OK || !m.Audit.CheckpointsVerified || m.Audit.Checkpoints == 0 || m.Audit.Entries != rows["audit_entries"] {
		t.Errorf("audit: got %+v; want the chain OK with its checkpoints verified over %d entries", m.Audit, rows["audit_entries"])
	}
}

// TestMigrateSQLiteToPostgresAndBack populates a SQLite install through
// the real binary, migrates it to PostgreSQL and serves it there, then
// migrates that back into a new data directory and serves it again: every
// secret, token, binding and rotation is there and the audit chain
// verifies. Then the refusals, none of which prints the password.
func TestMigrateSQLiteToPostgresAndBack(t *testing.T) {
	pg := pgtest.Start(t)
	e := newRotEnv(t)
	e.args = []string{"--audit-checkpoint-every", "5"}
	e.start()
	data := filepath.Join(e.dir, "data")

	e.mustCLI("", "project", "create", "payments", "--envs", "prod,staging")
	want := installState{values: map[string]string{}}
	for _, v := range []string{"sk_live_migrate_v1", "sk_live_migrate_v2", "sk_live_migrate_v3"} {
		e.mustCLI(v, "secret", "set", "payments/prod/STRIPE_KEY")
		want.values["payments/prod/STRIPE_KEY"] = v
	}
	e.mustCLI("db-url-value-7c2e", "secret", "set", "payments/prod/DB_URL")
	want.values["payments/prod/DB_URL"] = "db-url-value-7c2e"
	e.mustCLI("staging-only-value", "secret", "set", "payments/staging/OLD_KEY")
	ciToken := strings.TrimSpace(e.mustCLI("", "token", "create", "--name", "ci", "--grant", "read:payments/prod/*"))
	e.mustCLI("", "binding", "create", "deploy-prod", "--issuer", "https://token.actions.githubusercontent.com", "--audience", "tokenward",
		"--claim", "repository=acme/payments", "--grant", "read:payments/prod/*", "--ttl", "15m")
	// A rotation by the tokenward rotator: the secret becomes a token, the
	// rotation record and labels are stored.
	seed := strings.TrimSpace(e.mustCLI("", "token", "create", "--name", "deploy-bot", "--grant", "read:payments/prod/*"))
	e.mustCLI(seed, "secret", "set", "payments/prod/DEPLOY_TOKEN")
	e.mustCLI("", "rotation", "set", "payments/prod/DEPLOY_TOKEN", "--every", "30d", "--grace", "1h", "--rotator", "tokenward")
	e.mustCLI("", "rotate", "now", "payments/prod/DEPLOY_TOKEN")
	e.waitStep("payments/prod/DEPLOY_TOKEN", rotate.StepRevoke)
	want.values["payments/prod/DEPLOY_TOKEN"] = e.mustCLI("", "secret", "get", "payments/prod/DEPLOY_TOKEN")
	e.mustCLI("", "env", "retire", "payments/staging", "--retention", "30d")
	checkInstall(t, e, want, ciToken, seed)
	e.stopGracefully()

	// SQLite → PostgreSQL.
	url := pg.NewDatabase(t)
	mustMigrate(t, data, url, want.values)
	// Still sealed in PostgreSQL: no value in plaintext anywhere.
	for path, v := range want.values {
		if n := pgCount(t, url, `SELECT count(*) FROM secret_versions WHERE position($1::bytea in ciphertext) > 0`, []byte(v)) +
			pgCount(t, url, `SELECT count(*) FROM audit_entries WHERE position($1 in row_to_json(audit_entries)::text) > 0`, v) +
			pgCount(t, url, `SELECT count(*) FROM audit_ci WHERE position($1 in ci) > 0`, v); n != 0 {
			t.Errorf("PostgreSQL holds the value of %s in plaintext (%d rows)", path, n)
		}
	}
	e.args = append(e.args, "--storage", url)
	e.start()
	checkInstall(t, e, want, ciToken, seed)
	// New rows after the copy get new ids (the sequences were moved past
	// the copied ones), and the chain still verifies.
	e.mustCLI("sk_live_migrate_v4", "secret", "set", "payments/prod/STRIPE_KEY")
	want.values["payments/prod/STRIPE_KEY"] = "sk_live_migrate_v4"
	checkInstall(t, e, want, ciToken, seed)
	// While a server runs on the database, migrate refuses to read it.
	busy := filepath.Join(t.TempDir(), "busy")
	if _, errs, err := runBin(nil, "migrate", "--from", url, "--to", busy); err == nil || !strings.Contains(errs, "a tokenward server is running on this database") {
		t.Errorf("migrate from a served database: got %v, %q; want a refusal", err, errs)
	}
	e.stopGracefully()

	// PostgreSQL → a new data directory, holding the same keys.
	back := &rotEnv{t: t, dir: t.TempDir(), logs: &syncBuf{}, token: e.token, args: []string{"--audit-checkpoint-every", "5"}}
	back.port = freePort(t)
	back.addr = fmt.Sprintf("http://127.0.0.1:%d", back.port)
	t.Cleanup(back.stop)
	newData := filepath.Join(back.dir, "data")
	if err := os.MkdirAll(newData, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{keyFileName, "audit.key"} {
		copyFile(t, filepath.Join(data, f), filepath.Join(newData, f))
	}
	mustMigrate(t, url, newData, want.values)
	for _, f := range []string{dbFileName, dbFileName + "-wal"} {
		b, _ := os.ReadFile(filepath.Join(newData, f))
		for path, v := range want.values {
			if strings.Contains(string(b), v) {
				t.Errorf("%s holds the value of %s in plaintext", f, path)
			}
		}
	}
	back.start()
	checkInstall(t, back, want, ciToken, seed)
	// The archive went through both copies: it restores whole.
	back.mustCLI("", "env", "restore", "payments/staging")
	want.values["payments/staging/OLD_KEY"] = "staging-only-value"
	checkInstall(t, back, want, ciToken, seed)
	back.stopGracefully()

	// The table output names every table with its checksum verdict.
	third := pg.NewDatabase(t)
	out, errs, err := runBin(nil, "migrate", "--from", newData, "--to", third)
	if err != nil {
		t.Fatalf("migrate, table output: %v\n%s", err, errs)
	}
	if !strings.Contains(out, "TABLE") || !strings.Contains(out, "audit_entries") || strings.Contains(out, "MISMATCH") ||
		!strings.Contains(errs, "audit chain OK") || !strings.Contains(errs, "signed checkpoints") {
		t.Errorf("table output: got\n%s%s\nwant a table of every table and the audit chain OK", out, errs)
	}

	// Refusals.
	older := filepath.Join(t.TempDir(), "older")
	if err := os.MkdirAll(older, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dbFileName, dbFileName + "-wal"} {
		if _, err := os.Stat(filepath.Join(newData, f)); err == nil {
			copyFile(t, filepath.Join(newData, f), filepath.Join(older, f))
		}
	}
	lite, err := sql.Open("sqlite", filepath.Join(older, dbFileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lite.Exec(`DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	lite.Close()
	empty := pg.NewDatabase(t)
	noDir1, noDir2, noDir3 := filepath.Join(t.TempDir(), "x"), filepath.Join(t.TempDir(), "y"), filepath.Join(t.TempDir(), "z")
	cases := []struct {
		name      string
		from, to  string
		want      string
		untouched string // a PostgreSQL database that must hold no rows after
	}{
		{"non-empty PostgreSQL target", data, url, "is not empty (table ", ""},
		{"non-empty SQLite target", url, newData, "is not empty (table ", ""},
		{"schema version mismatch", older, empty, "schema versions differ", empty},
		{"wrong password in --to", data, pg.URL(pg.User, "not-the-"+pg.Password, "postgres"), "password authentication failed", ""},
		{"wrong password in --from", pg.URL(pg.User, "not-the-"+pg.Password, "postgres"), noDir1, "password authentication failed", ""},
		{"URL that does not parse", "postgres://u:" + pg.Password + "@[::1/db", noDir2, "does not parse", ""},
		{"schema version mismatch into a new directory", older, noDir3, "schema versions differ", ""},
		{"no store in --from", t.TempDir(), empty, "no store at", empty},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, err := runBin(nil, "migrate", "--from", tc.from, "--to", tc.to)
			if err == nil || !strings.Contains(errs, tc.want) {
				t.Errorf("got %v, %q; want an error containing %q", err, errs, tc.want)
			}
			if strings.Contains(out+errs, pg.Password) {
				t.Errorf("the output repeats the database password: %q %q", out, errs)
			}
			if tc.untouched != "" {
				if n := pgRows(t, tc.untouched); n != 0 {
					t.Errorf("target: got %d rows after a refusal; want none", n)
				}
			}
		})
	}
	// A failed migration into a directory it made leaves nothing behind.
	for _, dir := range []string{noDir1, noDir2, noDir3} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("target directory %s after a failed migration: got %v; want it absent", dir, err)
		}
	}
}

// pgRows counts the rows of the main tokenward tables at url.
func pgRows(t *testing.T, url string) int64 {
	t.Helper()
	return pgCount(t, url, `SELECT (SELECT count(*) FROM tokens) + (SELECT count(*) FROM keyring) + (SELECT count(*) FROM audit_entries) + (SELECT count(*) FROM secrets)`)
}

// pgCount runs a count query on the database at url.
func pgCount(t *testing.T, url, q string, args ...any) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateLocksSQLiteDataDirs: migrate refuses a SQLite data directory
// that a server runs on, on either side (a write made during the copy would
// not be in it), and a server does not start on a directory being copied:
// what PostgreSQL's server lock does for a database.
func TestMigrateLocksSQLiteDataDirs(t *testing.T) {
	e := newRotEnv(t)
	e.start()
	data := filepath.Join(e.dir, "data")
	e.mustCLI("", "project", "create", "payments", "--envs", "prod")
	e.mustCLI("sk_live_locked_1", "secret", "set", "payments/prod/STRIPE_KEY")
	copyDir := filepath.Join(t.TempDir(), "copy")

	// A server runs on the data directory: refused from it, and into it
	// (from another, stopped install).
	other := filepath.Join(t.TempDir(), "other")
	if _, errs, err := runBin(nil, "init", "--data-dir", other); err != nil {
		t.Fatalf("init: %v\n%s", err, errs)
	}
	const served = "a tokenward server is running on this data directory"
	for _, tc := range []struct{ name, from, to string }{
		{"from", data, copyDir},
		{"to", other, data},
	} {
		if _, errs, err := runBin(nil, "migrate", "--from", tc.from, "--to", tc.to); err == nil || !strings.Contains(errs, served) {
			t.Errorf("migrate %s a served data directory: got %v, %q; want %q", tc.name, err, errs, served)
		}
	}
	if _, err := os.Stat(copyDir); !os.IsNotExist(err) {
		t.Errorf("the refused copy left %s: %v", copyDir, err)
	}

	// Held by a migrate: a server does not start on it, and says why.
	e.stopGracefully()
	lock, err := os.OpenFile(filepath.Join(data, "server.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("lock as migrate does, with the server stopped: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "tokenward"), "server", "--data-dir", data, "--addr", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "a tokenward migrate is copying this data directory") {
		t.Errorf("server on a data directory being copied: got %v (%v), %q; want it refused", err, ctx.Err(), out)
	}
	lock.Close()

	// Stopped and unlocked: the copy goes through.
	if _, errs, err := runBin(nil, "migrate", "--from", data, "--to", copyDir); err != nil {
		t.Fatalf("migrate from a stopped server's data directory: %v\n%s", err, errs)
	}
	e.start()
	if got := e.mustCLI("", "secret", "get", "payments/prod/STRIPE_KEY"); got != "sk_live_locked_1" {
		t.Errorf("after the copy: got %q", got)
	}
}

// TestMigrateRefusesUnstoredAuditJournal: a SQLite server killed with
// audit entries still only in its journal (--audit-sync journal, the
// default) leaves them to the next start, which stores them before it
// serves. A migrate from that data directory copied the database alone:
// the entries — here the trail of a secret write — were not in the copy,
// whose chain verified all the same (it just ended early). It must refuse
// until a start has stored them; then every entry is copied.
func TestMigrateRefusesUnstoredAuditJournal(t *testing.T) {
	pg := pgtest.Start(t)
	e := newRotEnv(t)
	e.args = []string{"--audit-ingest-delay", "10s"}
	e.start()
	data := filepath.Join(e.dir, "data")
	e.mustCLI("", "project", "create", "journaled", "--envs", "prod")
	e.mustCLI("journal-value-5d1f", "secret", "set", "journaled/prod/ONLY_IN_JOURNAL")
	e.stop() // SIGKILL: the entries are in the journal, not yet in the database

	url := pg.NewDatabase(t)
	out, errs, err := runBin(nil, "migrate", "--from", data, "--to", url)
	if err == nil || !strings.Contains(errs, "audit.journal") {
		t.Errorf("migrate with audit entries only in the journal: got %v, %q, %q; want a refusal naming the journal", err, out, errs)
	}
	if strings.Contains(out+errs, "journal-value-5d1f") {
		t.Errorf("migrate's output holds a value")
	}
	if n := pgCount(t, url, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`); n != 0 {
		t.Errorf("target: got %d tables after the refusal; want it untouched", n)
	}

	// A start stores the journal's entries; after a clean stop every entry
	// is copied.
	e.start()
	e.stopGracefully()
	url = pg.NewDatabase(t)
	out, errs, err = runBin(nil, "migrate", "--from", data, "--to", url, "-o", "json")
	if err != nil {
		t.Fatalf("migrate after a clean stop: %v\n%s", err, errs)
	}
	var m migrateOut
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("migrate -o json: %v\n%s", err, out)
	}
	if !m.Audit.OK {
		t.Errorf("audit: got %+v; want the chain OK", m.Audit)
	}
	if n := pgCount(t, url, `SELECT count(*) FROM audit_entries WHERE resource = 'journaled/prod/ONLY_IN_JOURNAL'`); n == 0 {
		t.Errorf("the audit entry of the secret write made before the kill is not in the copy")
	}
}
