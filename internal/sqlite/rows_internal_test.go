package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/rotate"
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
		db.AddAnomaly(ctx, &monitor.Record{ID: "anm_1", Anomaly: monitor.Anomaly{Rule: monitor.RuleRateBurst, Severity: monitor.SeverityLow, Time: at}}),
		db.AppendAudit(ctx, &tokenward.AuditEntry{Seq: 1, Time: at, Action: "secret.read", Outcome: tokenward.OutcomeAllowed}),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ query, want string }{
		{`SELECT quote(created_at) FROM projects`, n},
		{`SELECT quote(tags) || quote(expires_at) || quote(created_at) || quote(updated_at) FROM secrets`, `'[]'NULL` + n + n},
		{`SELECT quote(created_at) FROM secret_versions`, n},
		{`SELECT quote(grants) || quote(ci) || quote(created_at) || quote(expires_at) || quote(revoked_at) || quote(last_used_at) FROM tokens`,
			`'["read:payments/prod/*"]''{}'` + n + `NULLNULLNULL`},
		{`SELECT quote(audiences) || quote(conditions) || quote(grants) || quote(ttl) || quote(enabled) || quote(created_at) FROM oidc_bindings`,
			`'null''null''null'60000000000` + `1` + n},
		{`SELECT quote(config) || quote(grace) || quote(created_at) || quote(next_at) || quote(finished_at) FROM rotations`, `'{}'0` + n + `00`},
		{`SELECT quote(every) || quote(config) || quote(disabled) || quote(last_at) || quote(next_at) FROM rotation_policies`, `3600000000000'{}'100`},
		{`SELECT quote(created_at) || quote(acked_at) FROM anomalies`, n + `NULL`},
		{`SELECT quote(time) || quote(ci) || quote(meta) FROM audit_entries`, n + `'{}''{}'`},
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

func TestTimeCol(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 5, time.UTC)
	tests := []struct {
		name      string
		src       any
		want      time.Time
		want0     time.Time // through timeCol0
		wantError bool
	}{
		{name: "NULL", src: nil},
		{name: "nanos", src: at.UnixNano(), want: at, want0: at},
		{name: "0", src: int64(0), want: time.Unix(0, 0).UTC()},
		{name: "text", src: "2026-11-22", wantError: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, got0 := time.Now(), time.Now()
			err, err0 := timeCol(&got).Scan(tc.src), timeCol0(&got0).Scan(tc.src)
			if tc.wantError {
				if err == nil || err0 == nil {
					t.Fatalf("got errors %v, %v; want both", err, err0)
				}
				return
			}
			if err != nil || err0 != nil {
				t.Fatal(err, err0)
			}
			if !got.Equal(tc.want) || got.Location() != time.UTC || !got0.Equal(tc.want0) {
				t.Errorf("got %v, %v; want %v, %v in UTC", got, got0, tc.want, tc.want0)
			}
		})
	}
	if timeArg(time.Time{}) != nil || timeArg(at) != at.UnixNano() || nanos(time.Time{}) != 0 || nanos(at) != at.UnixNano() {
		t.Errorf("timeArg/nanos: got %v, %v, %v, %v", timeArg(time.Time{}), timeArg(at), nanos(time.Time{}), nanos(at))
	}
}

func TestJSONHelpers(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]string
		want string
	}{{nil, "{}"}, {map[string]string{}, "{}"}, {map[string]string{"a": "b"}, `{"a":"b"}`}} {
		if got := jsonObject(tc.m); got != tc.want {
			t.Errorf("jsonObject(%v): got %s; want %s", tc.m, got, tc.want)
		}
	}
	var m map[string]string
	for _, src := range []any{`{"a":"b"}`, []byte(`{"a":"b"}`)} {
		m = nil
		if err := jsonCol(&m).Scan(src); err != nil || m["a"] != "b" {
			t.Errorf("jsonCol(%T): got %v, %v; want a=b", src, m, err)
		}
	}
	if err := jsonCol(&m).Scan(int64(1)); err == nil {
		t.Error("jsonCol(int64): got no error; want one")
	}
	if orNilMap(map[string]string{}) != nil || orNilSlice([]string{}) != nil || orNilSlice([]string{"x"}) == nil {
		t.Error("orNilMap/orNilSlice: empty must be nil, non-empty kept")
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
	got, err := queryAll(ctx, db.read, scanToken, `SELECT `+tokenCols+` FROM tokens`)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("queryAll of nothing: got %#v, %v; want an empty slice", got, err)
	}
	if _, err := queryAll(ctx, db.read, scanToken, `SELECT 1`); err == nil {
		t.Error("queryAll with a failing scan: got no error; want one")
	}
}
