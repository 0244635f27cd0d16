package postgres

import (
	"context"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// OIDC trust bindings and the replay record of exchanged identity tokens
// (core.BindingStore).
var _ core.BindingStore = (*DB)(nil)

// CreateBinding stores a new binding; ECONFLICT if the name is taken. The
// binding's JWKSFile is not stored: key files are server configuration.
func (db *DB) CreateBinding(ctx context.Context, b *oidc.Binding) error {
	var cols [3]string
	for i, v := range []any{b.Audiences, b.Claims, b.Grants} {
		var err error
		if cols[i], err = sqlrow.JSONText(v); err != nil {
			return err
		}
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO oidc_bindings (`+sqlrow.BindingCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		b.Name, b.Issuer, cols[0], cols[1], cols[2], int64(b.TTL), sqlrow.BoolArg(b.Enabled),
		b.CreatedAt.UnixNano(), b.UpdatedAt.UnixNano(), b.CreatedBy)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "binding %s exists already", b.Name)
	}
	return dbError("create binding", err)
}

// Binding returns one binding, or ENOTFOUND.
func (db *DB) Binding(ctx context.Context, name string) (*oidc.Binding, error) {
	b, err := sqlrow.ScanBinding(db.pool.QueryRow(ctx, `SELECT `+sqlrow.BindingCols+` FROM oidc_bindings WHERE name = $1`, name))
	b, err = found(b, err, "binding %s not found", name)
	return b, dbError("binding", err)
}

// Bindings lists every binding, by name.
func (db *DB) Bindings(ctx context.Context) ([]*oidc.Binding, error) {
	out, err := queryAll(ctx, db.pool, sqlrow.ScanBinding, `SELECT `+sqlrow.BindingCols+` FROM oidc_bindings ORDER BY name`)
	return out, dbError("bindings", err)
}

// SetBindingEnabled enables or disables a binding; ENOTFOUND if none.
func (db *DB) SetBindingEnabled(ctx context.Context, name string, enabled bool, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE oidc_bindings SET enabled = $1, updated_at = $2 WHERE name = $3`, sqlrow.BoolArg(enabled), at.UnixNano(), name)
	return dbError("set binding enabled", changedRow(tag, err, "binding %s not found", name))
}

// DeleteBinding removes a binding; ENOTFOUND if none. Tokens minted through
// it live on until they expire (they can be revoked like any token).
func (db *DB) DeleteBinding(ctx context.Context, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM oidc_bindings WHERE name = $1`, name)
	return dbError("delete binding", changedRow(tag, err, "binding %s not found", name))
}

// SeenIdentityToken records id until until and reports false, or reports
// true when id is recorded and not yet expired at now. The check and the
// record are one statement: an insert that takes over an expired record
// and does nothing to a live one, so of the servers sharing the database
// exactly one accepts an identity token (a concurrent insert of the same
// id waits for the first to commit, then sees it). Expired ids are swept
// first, skipping rows another server is sweeping, so sweeps never wait
// on each other.
func (db *DB) SeenIdentityToken(ctx context.Context, id string, until, now time.Time) (bool, error) {
	if _, err := db.pool.Exec(ctx, `DELETE FROM oidc_replay WHERE id IN (SELECT id FROM oidc_replay WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)`, now.UnixNano()); err != nil {
		return false, dbError("sweep identity tokens", err)
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO oidc_replay (id, expires_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE oidc_replay.expires_at <= $3`, id, until.UnixNano(), now.UnixNano())
	if err != nil {
		return false, dbError("record identity token", err)
	}
	return tag.RowsAffected() == 0, nil
}

// ReplayRecords returns how many identity tokens are recorded, expired or
// not yet swept (for tests and metrics).
func (db *DB) ReplayRecords(ctx context.Context) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM oidc_replay`).Scan(&n)
	return n, dbError("replay records", err)
}
