package postgres_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/seal"
)

// TestNoPlaintextInTheDatabase writes secrets with canary values through
// the engine (plain writes and a rotation's staged version), reads one back, then searches every text and bytea column
// of every table for the canaries and the admin token: none may be stored.
func TestNoPlaintextInTheDatabase(t *testing.T) {
	ctx := t.Context()
	url := pgtest.Shared(t).NewDatabase(t)
	db := mustOpenURL(t, url)
	key := seal.NewKey()
	adminSecret, err := core.Init(ctx, db, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	admin, err := c.Authenticate(ctx, adminSecret, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProject(ctx, admin, "payments", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	canaries := []string{"canary-v1-7f3a9c1e5b", "canary-v2-2d8e6b4f0a"}
	for _, v := range canaries {
		if _, err := c.PutSecret(ctx, admin, core.PutSecretInput{Project: "payments", Env: "prod", Name: "DB_URL", Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	// A rotation's staged value, written through the rotation adapter and
	// promoted, is sealed the same way.
	canaries = append(canaries, "canary-pending-91c04e7d3b")
	rs, err := c.RotationSecrets()
	if err != nil {
		t.Fatal(err)
	}
	n, err := rs.PutPending(ctx, "payments/prod/DB_URL", "rot_1", []byte(canaries[2]))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Promote(ctx, "payments/prod/DB_URL", n); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.GetSecret(ctx, admin, "payments", "prod", "DB_URL", 0); err != nil || string(got) != canaries[2] {
		t.Fatalf("read back: got %v; want the promoted canary", err)
	}
	c.Close() // flushes token uses, so their columns are searched too

	conn := mustConn(t, url)
	cols, err := pgx.CollectRows(mustQuery(t, conn, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type IN ('text', 'bytea', 'character varying') AND table_name <> 'schema_migrations'
		ORDER BY table_name, column_name`),
		pgx.RowToStructByPos[struct{ Table, Column, Type string }])
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) < 10 {
		t.Fatalf("got %d text and bytea columns; want every table's", len(cols))
	}
	// The secret's name is stored in plaintext: finding it proves the
	// search reads what is there.
	found := map[string]bool{}
	needles := append([]string{"DB_URL", adminSecret}, canaries...)
	for _, col := range cols {
		expr := pgx.Identifier{col.Column}.Sanitize()
		if col.Type != "bytea" {
			expr = `convert_to(` + expr + `, 'UTF8')`
		}
		q := `SELECT ` + expr + ` FROM ` + pgx.Identifier{col.Table}.Sanitize()
		vals, err := pgx.CollectRows(mustQuery(t, conn, q), pgx.RowTo[[]byte])
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, v := range vals {
			for _, n := range needles {
				if bytes.Contains(v, []byte(n)) {
					found[n] = true
					if n != "DB_URL" {
						t.Errorf("%s.%s holds a secret value or token in plaintext", col.Table, col.Column)
					}
				}
			}
		}
	}
	if !found["DB_URL"] {
		t.Error("the secret's name was not found: the search reads nothing")
	}
}

func mustQuery(tb testing.TB, conn *pgx.Conn, q string) pgx.Rows {
	tb.Helper()
	rows, err := conn.Query(tb.Context(), q)
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}
