package postgres_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// TestSchemaMatchesSQLite: every PostgreSQL table has its SQLite twin's
// columns, in order, with the same storage class (INTEGER as integer or
// bigint, TEXT as text, BLOB as bytea), so a row copies across as it is.
func TestSchemaMatchesSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenward.db")
	lite := sqlite.NewDB(path)
	if err := lite.Open(); err != nil {
		t.Fatal(err)
	}
	lite.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.QueryContext(t.Context(), `SELECT m.name, p.name, p.type FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		want[table] = append(want[table], col+" "+map[string]string{"INTEGER": "integer", "TEXT": "text", "BLOB": "bytes"}[typ])
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	conn := mustConn(t, MustOpenDB(t).URL)
	pgRows := mustQuery(t, conn, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`)
	got := map[string][]string{}
	var table, col, typ string
	if _, err := pgx.ForEachRow(pgRows, []any{&table, &col, &typ}, func() error {
		if table == "rotations" && col == "seq" {
			return nil // SQLite's rowid, implicit there
		}
		got[table] = append(got[table], col+" "+map[string]string{"integer": "integer", "bigint": "integer", "text": "text", "bytea": "bytes"}[typ])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"keyring", "projects", "environments", "data_keys", "secrets", "secret_versions", "tokens",
		"secret_labels", "rotations", "rotation_policies", "bulk_jobs", "schema_migrations"} {
		if got[table] == nil {
			t.Errorf("table %s: missing in PostgreSQL", table)
		}
	}
	for table, cols := range got {
		if !slices.Equal(cols, want[table]) {
			t.Errorf("table %s: got columns %s; want SQLite's %s", table, strings.Join(cols, ", "), strings.Join(want[table], ", "))
		}
	}
}
