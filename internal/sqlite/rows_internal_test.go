package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

func mustOpen(tb testing.TB) *DB {
	tb.Helper()
	db := NewDB(filepath.Join(tb.TempDir(), "tokenward.db"))
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestStoredFormat pins how values are stored, column by column, as
// SQLite's quote() prints them: a future backend or helper that changes a
// column's encoding (NULL against 0 for a zero time, null against {} for
// an empty map, booleans, durations) fails here.
func TestStoredFormat(t *testing.T) {
	db := mustOpen(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	n := "1795341600000000000" // at in Unix nanoseconds
	steps := []error{
		db.CreateProject(ctx, &tokenward.Project{Name: "payments", Envs: []string{"prod"}, CreatedAt: at}, &tokenward.DataKey{Project: "payments", Version: 1, Wrapped: []byte{1}}),
		db.PutSecret(ctx, &tokenward.Secret{Project: "payments", Env: "prod", Name: "DB_URL"}, 0, &tokenward.SecretVersion{Version: 1, CreatedAt: at, CreatedBy: "tok_a", Ciphertext: []byte{2}}),
		db.CreateToken(ctx, &tokenward.Token{ID: "tok_a", Name: "ci", Kind: tokenward.TokenService, Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, CreatedAt: at}, [32]byte{3}),
		db.CreateBinding(ctx, &oidc.Binding{Name: "deploy", Issuer: "https://issuer", TTL: time.Minute, Enabled: true, CreatedAt: at, UpdatedAt: at}),
		db.Rotations().CreateRotation(ctx, &rotate.Rotation{ID: "rot_1", Path: "payments/prod/DB_URL", Rotator: "random", Step: rotate.StepCreate, CreatedAt: at, UpdatedAt: at}),
		db.Rotations().PutPolicy(ctx, &rotate.Policy{Path: "payments/prod/DB_URL", Every: time.Hour, Rotator: "random", Disabled: true}),
		db.Rotations().CreateBulkJob(ctx, &rotate.BulkJob{ID: "bulk_1", Owner: "tok_a", Status: "running", Planned: 2, StartedAt: at, UpdatedAt: at}, 100, at),
		db.AddAnomaly(ctx, &monitor.Record{ID: "anm_1", Anomaly: monitor.Anomaly{Rule: monitor.RuleRateBurst, Severity: monitor.SeverityLow, Time: at}}),
		db.AppendAudit(ctx, &tokenward.AuditEntry{Seq: 1, Time: at, Action: "secret.read", Outcome: tokenward.OutcomeAllowed}),
		db.CreateGatewayRoute(ctx, &tokenward.GatewayRoute{Name: "gh", Upstream: "https://x", Secret: "a/b/C", Inject: "basic", Allow: []string{"GET /*"}, Timeout: time.Second, CreatedAt: at}),
		db.CreateConsoleSession(ctx, [32]byte{6}, &tokenward.ConsoleSession{TokenID: "tok_a", SealedToken: []byte{7}, CreatedAt: at, LastSeenAt: at, ExpiresAt: at}),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ query, want string }{
		{`SELECT quote(created_at) FROM projects`, n},
		{`SELECT quote(allow) || quote(allow_nets) || quote(rate) || quote(timeout) || quote(created_at) FROM gateway_routes`, `'["GET /*"]''[]'''1000000000` + n},
		{`SELECT quote(tags) || quote(expires_at) || quote(created_at) || quote(updated_at) FROM secrets`, `'[]'NULL` + n + n},
		{`SELECT quote(created_at) FROM secret_versions`, n},
		{`SELECT quote(grants) || quote(ci) || quote(created_at) || quote(expires_at) || quote(revoked_at) || quote(last_used_at) FROM tokens`,
			`'["read:payments/prod/*"]''{}'` + n + `NULLNULLNULL`},
		{`SELECT quote(audiences) || quote(conditions) || quote(grants) || quote(ttl) || quote(enabled) || quote(created_at) FROM oidc_bindings`,
			`'null''null''null'60000000000` + `1` + n},
		{`SELECT quote(config) || quote(grace) || quote(created_at) || quote(next_at) || quote(finished_at) FROM rotations`, `'{}'0` + n + `00`},
		{`SELECT quote(every) || quote(config) || quote(disabled) || quote(last_at) || quote(next_at) FROM rotation_policies`, `3600000000000'{}'100`},
		{`SELECT quote(planned) || quote(started_at) || quote(updated_at) || quote(finished_at) || quote(items) || quote(error) FROM bulk_jobs`, `2` + n + n + `0'[]'''`},
		{`SELECT quote(created_at) || quote(acked_at) FROM anomalies`, n + `NULL`},
		{`SELECT quote(time) || quote(ci) || quote(meta) FROM audit_entries`, n + `'{}''{}'`},
		{`SELECT quote(hash) || quote(token_id) || quote(sealed_token) || quote(created_at) || quote(last_seen_at) || quote(expires_at) FROM console_sessions`, `X'06` + strings.Repeat("00", 31) + `''tok_a'X'07'` + n + n + n},
	}
	for _, tc := range tests {
		var got string
		if err := db.read.QueryRowContext(ctx, tc.query).Scan(&got); err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %s; want %s", tc.query, got, tc.want)
		}
	}
}

func TestFoundAndChangedRow(t *testing.T) {
	db := mustOpen(t)
	ctx := t.Context()
	boom := errors.New("boom")
	if _, err := found(1, sql.ErrNoRows, "thing %d", 7); tokenward.ErrorCode(err) != tokenward.ENOTFOUND || tokenward.ErrorMessage(err) != "thing 7" {
		t.Errorf("found(ErrNoRows): got %v; want ENOTFOUND thing 7", err)
	}
	if v, err := found(1, boom, "thing"); v != 0 || err != boom {
		t.Errorf("found(boom): got %v, %v; want 0, boom", v, err)
	}
	if v, err := found(1, nil, "thing"); v != 1 || err != nil {
		t.Errorf("found(nil): got %v, %v; want 1, nil", v, err)
	}
	res, err := db.write.ExecContext(ctx, `DELETE FROM tokens WHERE id = 'none'`)
	if err := changedRow(res, err, "no token"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("changedRow(0 rows): got %v; want ENOTFOUND", err)
	}
	if err := changedRow(nil, boom, "no token"); err != boom {
		t.Errorf("changedRow(boom): got %v; want boom", err)
	}
	// No rows is an empty slice, not nil: JSON answers hold [].
	got, err := queryAll(ctx, db.read, sqlrow.ScanToken, `SELECT `+sqlrow.TokenCols+` FROM tokens`)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("queryAll of nothing: got %#v, %v; want an empty slice", got, err)
	}
	if _, err := queryAll(ctx, db.read, sqlrow.ScanToken, `SELECT 1`); err == nil {
		t.Error("queryAll with a failing scan: got no error; want one")
	}
}
