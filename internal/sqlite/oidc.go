package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
)

// OIDC trust bindings and the replay record of exchanged identity tokens
// (core.BindingStore).

const bindingCols = `name, issuer, audiences, conditions, grants, ttl, enabled, created_at, updated_at, created_by`

func scanBinding(sc interface{ Scan(...any) error }) (*oidc.Binding, error) {
	b := &oidc.Binding{}
	var auds, conds, grants string
	var ttl, created, updated int64
	var enabled int
	if err := sc.Scan(&b.Name, &b.Issuer, &auds, &conds, &grants, &ttl, &enabled, &created, &updated, &b.CreatedBy); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(auds), &b.Audiences); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(conds), &b.Claims); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(grants), &b.Grants); err != nil {
		return nil, err
	}
	b.TTL = time.Duration(ttl)
	b.Enabled = enabled != 0
	b.CreatedAt, b.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return b, nil
}

// CreateBinding stores a new binding; ECONFLICT if the name is taken. The
// binding's JWKSFile is not stored: key files are server configuration.
func (db *DB) CreateBinding(ctx context.Context, b *oidc.Binding) error {
	auds, err := json.Marshal(b.Audiences)
	if err != nil {
		return err
	}
	conds, err := json.Marshal(b.Claims)
	if err != nil {
		return err
	}
	grants, err := json.Marshal(b.Grants)
	if err != nil {
		return err
	}
	enabled := 0
	if b.Enabled {
		enabled = 1
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO oidc_bindings (`+bindingCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.Name, b.Issuer, string(auds), string(conds), string(grants), int64(b.TTL), enabled,
		b.CreatedAt.UnixNano(), b.UpdatedAt.UnixNano(), b.CreatedBy)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "binding %s exists already", b.Name)
	}
	return err
}

// Binding returns one binding, or ENOTFOUND.
func (db *DB) Binding(ctx context.Context, name string) (*oidc.Binding, error) {
	b, err := scanBinding(db.read.QueryRowContext(ctx, `SELECT `+bindingCols+` FROM oidc_bindings WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("binding %s not found", name)
	}
	return b, err
}

// Bindings lists every binding, by name.
func (db *DB) Bindings(ctx context.Context) ([]*oidc.Binding, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+bindingCols+` FROM oidc_bindings ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*oidc.Binding{}
	for rows.Next() {
		b, err := scanBinding(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// SetBindingEnabled enables or disables a binding; ENOTFOUND if none.
func (db *DB) SetBindingEnabled(ctx context.Context, name string, enabled bool, at time.Time) error {
	e := 0
	if enabled {
		e = 1
	}
	res, err := db.write.ExecContext(ctx, `UPDATE oidc_bindings SET enabled = ?, updated_at = ? WHERE name = ?`, e, at.UnixNano(), name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound("binding %s not found", name)
	}
	return nil
}

// DeleteBinding removes a binding; ENOTFOUND if none. Tokens minted through
// it live on until they expire (they can be revoked like any token).
func (db *DB) DeleteBinding(ctx context.Context, name string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM oidc_bindings WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound("binding %s not found", name)
	}
	return nil
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
