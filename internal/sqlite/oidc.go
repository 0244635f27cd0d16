package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// OIDC trust bindings and the replay record of exchanged identity tokens
// (core.BindingStore).

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
	_, err := db.write.ExecContext(ctx, `INSERT INTO oidc_bindings (`+sqlrow.BindingCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.Name, b.Issuer, cols[0], cols[1], cols[2], int64(b.TTL), b.Enabled,
		b.CreatedAt.UnixNano(), b.UpdatedAt.UnixNano(), b.CreatedBy)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "binding %s exists already", b.Name)
	}
	return err
}

// Binding returns one binding, or ENOTFOUND.
func (db *DB) Binding(ctx context.Context, name string) (*oidc.Binding, error) {
	b, err := sqlrow.ScanBinding(db.read.QueryRowContext(ctx, `SELECT `+sqlrow.BindingCols+` FROM oidc_bindings WHERE name = ?`, name))
	return found(b, err, "binding %s not found", name)
}

// Bindings lists every binding, by name.
func (db *DB) Bindings(ctx context.Context) ([]*oidc.Binding, error) {
	return queryAll(ctx, db.read, sqlrow.ScanBinding, `SELECT `+sqlrow.BindingCols+` FROM oidc_bindings ORDER BY name`)
}

// SetBindingEnabled enables or disables a binding; ENOTFOUND if none.
func (db *DB) SetBindingEnabled(ctx context.Context, name string, enabled bool, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE oidc_bindings SET enabled = ?, updated_at = ? WHERE name = ?`, enabled, at.UnixNano(), name)
	return changedRow(res, err, "binding %s not found", name)
}

// DeleteBinding removes a binding; ENOTFOUND if none. Tokens minted through
// it live on until they expire (they can be revoked like any token).
func (db *DB) DeleteBinding(ctx context.Context, name string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM oidc_bindings WHERE name = ?`, name)
	return changedRow(res, err, "binding %s not found", name)
}

// SeenIdentityToken records id until until and reports false, or reports
// true when id is recorded and not yet expired at now. The check and the
// record are one statement in one transaction (INSERT that does nothing on
// conflict), so two servers sharing the database cannot both accept the
// same identity token. Expired ids are swept in the same transaction.
func (db *DB) SeenIdentityToken(ctx context.Context, id string, until, now time.Time) (bool, error) {
	var seen bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_replay WHERE expires_at <= ?`, now.UnixNano()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO oidc_replay (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, until.UnixNano())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		seen = n == 0
		return nil
	})
	return seen, err
}

// ReplayRecords returns how many identity tokens are recorded, expired or
// not yet swept (for tests and metrics).
func (db *DB) ReplayRecords(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM oidc_replay`).Scan(&n)
	return n, err
}
