package migrate_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/migrate"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// newSQLite makes a tokenward SQLite file with the store's own Open and
// runs stmts on it.
func newSQLite(t *testing.T, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokenward.db")
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path
}

// newPostgres makes a tokenward PostgreSQL database with the store's own
// Open.
func newPostgres(t *testing.T) string {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t)
	db := postgres.NewDB(url)
	if err := db.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return url
}

func open(t *testing.T, where string, target bool) migrate.End {
	t.Helper()
	var e migrate.End
	var err error
	if strings.HasPrefix(where, "postgres://") {
		e, err = migrate.OpenPostgres(t.Context(), where, target)
	} else {
		e, err = migrate.OpenSQLite(t.Context(), where, target)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// pgRowCount counts the rows of every tokenward table at url.
func pgRowCount(t *testing.T, url string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, n := range names {
		var c int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{n}.Sanitize()).Scan(&c); err != nil {
			t.Fatal(err)
		}
		total += c
	}
	return total
}

const (
	project = `INSERT INTO projects (name, created_at) VALUES ('payments', 1)`
	env     = `INSERT INTO environments (project, name, created_at) VALUES ('payments', 'prod', 1)`
	// A policy PostgreSQL's CHECK refuses (disabled is 0 or 1) and
	// SQLite's schema lets through: the copy fails on it, late.
	badPolicy = `INSERT INTO rotation_policies (path, every, cron, jitter, grace, rotator, config, disabled, last_at, next_at)
		VALUES ('payments/prod/K', 1, '', 0, 0, 'tokenward', '{"x":"row-canary"}', 2, 0, 0)`
)

// TestCopyIsAllOrNothing: a row the target refuses after other tables were
// copied leaves the target with no rows at all, and the error does not
// quote the row (PostgreSQL's detail would).
func TestCopyIsAllOrNothing(t *testing.T) {
	src := newSQLite(t, project, env, badPolicy)
	url := newPostgres(t)
	_, err := migrate.Copy(t.Context(), open(t, src, false), open(t, url, true))
	if err == nil || !strings.Contains(err.Error(), "rotation_policies") {
		t.Fatalf("got %v; want the copy of rotation_policies refused", err)
	}
	if strings.Contains(err.Error(), "row-canary") {
		t.Errorf("the error quotes the row: %v", err)
	}
	if n := pgRowCount(t, url); n != 0 {
		t.Errorf("target after a failed copy: got %d rows; want none", n)
	}
}

// TestCopyRefuses differences between the two sides before it writes
// anything.
func TestCopyRefuses(t *testing.T) {
	tests := []struct {
		name     string
		src, dst []string // statements on a SQLite source and target
		toPG     bool     // the target is PostgreSQL
		want     string
	}{
		{"a table only the source has", []string{`CREATE TABLE extra (x INTEGER)`}, nil, false,
			": extra; only in SQLite"},
		{"a table only the target has", nil, []string{`CREATE TABLE extra (x INTEGER)`}, false, ": extra); nothing was copied"},
		{"a column only the source has", []string{`ALTER TABLE projects ADD COLUMN extra TEXT`}, nil, false, "table projects: column extra is only in SQLite"},
		{"a column of another class", []string{`DROP TABLE stale_notices`, `CREATE TABLE stale_notices (token_id TEXT PRIMARY KEY, notified_at TEXT NOT NULL)`}, nil, true,
			"table stale_notices: column notified_at is stored as text in SQLite"},
		{"an older source", []string{`DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`}, nil, true,
			"schema versions differ"},
		{"a non-empty target", []string{project}, []string{project, env}, false, "is not empty (table projects has 1 rows)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSQLite(t, tt.src...)
			var dst string
			if tt.toPG {
				dst = newPostgres(t)
			} else {
				dst = newSQLite(t, tt.dst...)
			}
			_, err := migrate.Copy(t.Context(), open(t, src, false), open(t, dst, true))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error containing %q", err, tt.want)
			}
			if tt.toPG {
				if n := pgRowCount(t, dst); n != 0 {
					t.Errorf("target after a refusal: got %d rows; want none", n)
				}
			}
		})
	}
}

// TestCopyBothWays copies a few rows SQLite → PostgreSQL → SQLite with the
// same checksums all along, including rotations' insertion order (SQLite's
// rowid, PostgreSQL's seq).
func TestCopyBothWays(t *testing.T) {
	rot := func(id string, rowid int) string {
		return `INSERT INTO rotations (rowid, id, path, rotator, config, grace, reason, step, attempt, current_version, pending_version,
			created_at, updated_at, next_at, finished_at, error, rev) VALUES (` + strconv.Itoa(rowid) + `, '` + id + `', 'p/e/` + id + `', 'tokenward', '{}', 0, '', 'done', 0, 1, 2, 5, 5, 0, 0, '', 1)`
	}
	src := newSQLite(t, project, env, rot("rot_b", 7), rot("rot_a", 3),
		`INSERT INTO keyring (id, sealed) VALUES (1, x'00ff10')`,
		// An audit entry whose CI facts it refers to in audit_ci.
		`INSERT INTO audit_ci (id, digest, ci) VALUES (5, x'00ab', '{"repository":"acme/api"}')`,
		`INSERT INTO audit_entries (id, seq, time, action, outcome, ci, prev_hash, hash, ci_id) VALUES (1, 1, 1, 'secret.read', 'allowed', '{}', '', '', 5)`)
	url := newPostgres(t)
	there, err := migrate.Copy(t.Context(), open(t, src, false), open(t, url, true))
	if err != nil {
		t.Fatal(err)
	}
	back := newSQLite(t)
	again, err := migrate.Copy(t.Context(), open(t, url, false), open(t, back, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(there.Tables) != len(again.Tables) || len(there.Tables) == 0 {
		t.Fatalf("got %d and %d tables; want the same, more than none", len(there.Tables), len(again.Tables))
	}
	for i := range there.Tables {
		a, b := there.Tables[i], again.Tables[i]
		if a != b || !a.ChecksumOK {
			t.Errorf("table %s: got %+v there and %+v back; want the same checksum, matching", a.Table, a, b)
		}
	}
	raw, err := sql.Open("sqlite", "file:"+back)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var ids string
	if err := raw.QueryRow(`SELECT group_concat(id || '@' || rowid, ' ') FROM (SELECT id, rowid FROM rotations ORDER BY rowid)`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if want := "rot_a@3 rot_b@7"; ids != want {
		t.Errorf("rotations back in SQLite: got %q; want %q", ids, want)
	}
	// PostgreSQL's sequence follows the copied rowids.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var next int64
	if err := conn.QueryRow(t.Context(), `SELECT nextval(pg_get_serial_sequence('rotations', 'seq'))`).Scan(&next); err != nil || next != 8 {
		t.Errorf("rotations.seq's next value: got %d, %v; want 8", next, err)
	}
	var ci string
	if err := conn.QueryRow(t.Context(), `SELECT c.ci FROM audit_entries e JOIN audit_ci c ON c.id = e.ci_id WHERE c.digest = '\x00ab'`).Scan(&ci); err != nil || ci != `{"repository":"acme/api"}` {
		t.Errorf("an entry's CI facts in PostgreSQL: got %q, %v; want them by their reference", ci, err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT nextval(pg_get_serial_sequence('audit_ci', 'id'))`).Scan(&next); err != nil || next != 6 {
		t.Errorf("audit_ci.id's next value: got %d, %v; want 6", next, err)
	}
}

// TestOpenPostgresNeverRepeatsThePassword: a wrong password and a URL that
// does not parse are refused without the password.
func TestOpenPostgresNeverRepeatsThePassword(t *testing.T) {
	pg := pgtest.Shared(t)
	const canary = "pw-canary-41c9"
	tests := []struct {
		name, url, want string
	}{
		{"wrong password", pg.URL(pg.User, canary, "postgres"), "password authentication failed"},
		{"does not parse", "postgres://u:" + canary + "@[::1/db", "does not parse"},
		{"nothing listens", "postgres://u:" + canary + "@127.0.0.1:1/db?connect_timeout=2", "cannot connect to 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := migrate.OpenPostgres(t.Context(), tt.url, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}
