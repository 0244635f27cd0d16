package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

func mustOpen(tb testing.TB) *DB {
	tb.Helper()
	db := NewDB(pgtest.Shared(tb).NewDatabase(tb))
	db.MaxConns = 4
	if err := db.Open(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// quote prints a row's values as SQLite's quote() does (integers bare,
// text in quotes, NULL, bytes as X'..'), so the wanted strings below are
// internal/sqlite's TestStoredFormat's, and a row copied between the
// backends means the same. A column of another type (a timestamp, a
// boolean, JSONB) fails here.
func quote(vals []any) (string, error) {
	var b strings.Builder
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			b.WriteString("NULL")
		case int64, int32:
			fmt.Fprint(&b, v)
		case string:
			b.WriteString("'" + strings.ReplaceAll(v, "'", "''") + "'")
		case []byte:
			fmt.Fprintf(&b, "X'%X'", v)
		default:
			return "", fmt.Errorf("column of %T, not integer, text or bytes", v)
		}
	}
	return b.String(), nil
}

// TestStoredFormat pins how values are stored, column by column, with the
// expectations of internal/sqlite's TestStoredFormat for the same writes.
func TestStoredFormat(t *testing.T) {
	db := mustOpen(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	n := "1795341600000000000" // at in Unix nanoseconds
	steps := []error{
		db.CreateProject(ctx, &tokenward.Project{Name: "payments", Envs: []string{"prod"}, CreatedAt: at}, &tokenward.DataKey{Project: "payments", Version: 1, Wrapped: []byte{1}}),
		db.PutSecret(ctx, &tokenward.Secret{Project: "payments", Env: "prod", Name: "DB_URL"}, 0, &tokenward.SecretVersion{Version: 1, CreatedAt: at, CreatedBy: "tok_a", Ciphertext: []byte{2}}),
		db.PutPendingVersion(ctx, "payments", "prod", "DB_URL", "rot_1", &tokenward.SecretVersion{Version: 2, CreatedAt: at, Ciphertext: []byte{4}}),
		db.CreateToken(ctx, &tokenward.Token{ID: "tok_a", Name: "ci", Kind: tokenward.TokenService, Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, CreatedAt: at}, [32]byte{3}),
		db.InitKeyring(ctx, []byte{5}),
		db.Rotations().CreateRotation(ctx, &rotate.Rotation{ID: "rot_1", Path: "payments/prod/DB_URL", Rotator: "random", Step: rotate.StepCreate, CreatedAt: at, UpdatedAt: at}),
		db.Rotations().PutPolicy(ctx, &rotate.Policy{Path: "payments/prod/DB_URL", Every: time.Hour, Rotator: "random", Disabled: true}),
		db.Rotations().CreateBulkJob(ctx, &rotate.BulkJob{ID: "bulk_1", Owner: "tok_a", Status: "running", Planned: 2, StartedAt: at, UpdatedAt: at}, 100, at),
		db.CreateGatewayRoute(ctx, &tokenward.GatewayRoute{Name: "gh", Upstream: "https://x", Secret: "a/b/C", Inject: "basic", Allow: []string{"GET /*"}, Timeout: time.Second, CreatedAt: at}),
		db.CreateConsoleSession(ctx, [32]byte{6}, &tokenward.ConsoleSession{TokenID: "tok_a", SealedToken: []byte{7}, CreatedAt: at, LastSeenAt: at, ExpiresAt: at}),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ query, want string }{
		{`SELECT sealed FROM keyring`, `X'05'`},
		{`SELECT created_at FROM projects`, n},
		{`SELECT allow, allow_nets, rate, timeout, created_at FROM gateway_routes`, `'["GET /*"]''[]'''1000000000` + n},
		{`SELECT created_at FROM environments`, n},
		{`SELECT version, wrapped FROM data_keys`, `1X'01'`},
		{`SELECT tags, expires_at, created_at, updated_at FROM secrets`, `'[]'NULL` + n + n},
		{`SELECT ciphertext, created_at FROM secret_versions WHERE version = 1`, `X'02'` + n},
		{`SELECT label, version, rotation_id FROM secret_labels`, `'PENDING'2'rot_1'`},
		{`SELECT hash, grants, ci, created_at, expires_at, revoked_at, last_used_at FROM tokens`,
			`X'03` + strings.Repeat("00", 31) + `''["read:payments/prod/*"]''{}'` + n + `NULLNULLNULL`},
		{`SELECT config, grace, created_at, next_at, finished_at FROM rotations`, `'{}'0` + n + `00`},
		{`SELECT every, config, disabled, last_at, next_at FROM rotation_policies`, `3600000000000'{}'100`},
		{`SELECT planned, started_at, updated_at, finished_at, items, error FROM bulk_jobs`, `2` + n + n + `0'[]'''`},
		{`SELECT hash, token_id, sealed_token, created_at, last_seen_at, expires_at FROM console_sessions`, `X'06` + strings.Repeat("00", 31) + `''tok_a'X'07'` + n + n + n},
	}
	for _, tc := range tests {
		vals, err := pgx.CollectOneRow(mustQuery(t, db, tc.query), func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		got, err := quote(vals)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %s; want %s", tc.query, got, tc.want)
		}
	}
}

func mustQuery(tb testing.TB, db *DB, q string) pgx.Rows {
	tb.Helper()
	rows, err := db.pool.Query(tb.Context(), q)
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// TestHelpersOnTheServer reads the helpers' edge cases back through
// PostgreSQL: NULL and 0 times, booleans, empty JSON, no rows.
func TestHelpersOnTheServer(t *testing.T) {
	db := mustOpen(t)
	ctx := t.Context()
	var null, zero, zero0 time.Time
	var yes, no bool
	var m map[string]string
	err := db.pool.QueryRow(ctx, `SELECT NULL::bigint, 0::bigint, 0::bigint, 1::integer, 0::integer, '{}'::text`).
		Scan(sqlrow.TimeCol(&null), sqlrow.TimeCol(&zero), sqlrow.TimeCol0(&zero0), sqlrow.BoolCol(&yes), sqlrow.BoolCol(&no), sqlrow.JSONCol(&m))
	if err != nil {
		t.Fatal(err)
	}
	if !null.IsZero() || !zero.Equal(time.Unix(0, 0)) || !zero0.IsZero() || !yes || no || m == nil || sqlrow.OrNilMap(m) != nil {
		t.Errorf("got %v %v %v %v %v %#v; want zero, epoch, zero, true, false, empty map", null, zero, zero0, yes, no, m)
	}
	if err := db.pool.QueryRow(ctx, `SELECT 'x'::text`).Scan(sqlrow.BoolCol(&yes)); err == nil {
		t.Error("sqlrow.BoolCol of text: got no error; want one")
	}
	if _, err := found(1, db.pool.QueryRow(ctx, `SELECT 1 WHERE false`).Scan(new(int)), "thing %d", 7); tokenward.ErrorCode(err) != tokenward.ENOTFOUND || tokenward.ErrorMessage(err) != "thing 7" {
		t.Errorf("found(no rows): got %v; want ENOTFOUND thing 7", err)
	}
	tag, err := db.pool.Exec(ctx, `DELETE FROM tokens WHERE id = 'none'`)
	if err := changedRow(tag, err, "no token"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("changedRow(0 rows): got %v; want ENOTFOUND", err)
	}
	got, err := queryAll(ctx, db.pool, sqlrow.ScanToken, `SELECT `+sqlrow.TokenCols+` FROM tokens`)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("queryAll of nothing: got %#v, %v; want an empty slice", got, err)
	}
	if sqlrow.BoolArg(true) != 1 || sqlrow.BoolArg(false) != 0 || sqlrow.TimeArg(time.Time{}) != nil || sqlrow.Nanos(time.Time{}) != 0 {
		t.Error("sqlrow.BoolArg/sqlrow.TimeArg/sqlrow.Nanos: wrong encoding of true, false or the zero time")
	}
}
