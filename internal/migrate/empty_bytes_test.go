package migrate_test

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/migrate"
)

// TestEmptyBytesStayEmpty: a zero-length BLOB/bytea is a value, not
// NULL. SQLite's driver hands it back as a nil []byte, which was written as
// NULL: a NOT NULL column refused the copy, a nullable one would change.
func TestEmptyBytesStayEmpty(t *testing.T) {
	const rows = `INSERT INTO keyring (id, sealed) VALUES (1, x'')`
	const ckpt = `INSERT INTO audit_checkpoints (id, seq, hash, time, key_id, signature) VALUES (1, 1, 'h', 1, 'k', x'')`
	pgSource := func(t *testing.T) string {
		url := newPostgres(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		for _, q := range []string{`INSERT INTO keyring (id, sealed) VALUES (1, '\x')`, strings.ReplaceAll(ckpt, "x''", `'\x'`)} {
			if _, err := conn.Exec(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		return url
	}
	tests := []struct {
		name     string
		from, to func(t *testing.T) string
	}{
		{"SQLite to PostgreSQL", func(t *testing.T) string { return newSQLite(t, rows, ckpt) }, newPostgres},
		{"SQLite to SQLite", func(t *testing.T) string { return newSQLite(t, rows, ckpt) }, func(t *testing.T) string { return newSQLite(t) }},
		{"PostgreSQL to SQLite", pgSource, func(t *testing.T) string { return newSQLite(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := tt.from(t), tt.to(t)
			if _, err := migrate.Copy(t.Context(), open(t, from, false), open(t, to, true)); err != nil {
				t.Fatalf("copy: %v", err)
			}
			var n int
			var err error
			if strings.HasPrefix(to, "postgres://") {
				var conn *pgx.Conn
				if conn, err = pgx.Connect(t.Context(), to); err != nil {
					t.Fatal(err)
				}
				defer conn.Close(t.Context())
				err = conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM keyring WHERE sealed = '\x') + (SELECT count(*) FROM audit_checkpoints WHERE signature = '\x')`).Scan(&n)
			} else {
				var db *sql.DB
				if db, err = sql.Open("sqlite", "file:"+to); err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				err = db.QueryRow(`SELECT (SELECT count(*) FROM keyring WHERE typeof(sealed) = 'blob' AND length(sealed) = 0) + (SELECT count(*) FROM audit_checkpoints WHERE typeof(signature) = 'blob' AND length(signature) = 0)`).Scan(&n)
			}
			if err != nil || n != 2 {
				t.Errorf("empty values in the copy: got %d, %v; want 2", n, err)
			}
		})
	}
}
