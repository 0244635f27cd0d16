package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
)

var _ tokenward.LabelStore = (*DB)(nil)

// SecretLabels implements tokenward.LabelStore.
func (db *DB) SecretLabels(ctx context.Context, project, env, name string) (*tokenward.VersionLabels, error) {
	return secretLabels(ctx, db.pool, project, env, name)
}

func secretLabels(ctx context.Context, q queryer, project, env, name string) (*tokenward.VersionLabels, error) {
	l := &tokenward.VersionLabels{}
	err := q.QueryRow(ctx, `SELECT s.version, (SELECT coalesce(max(version), 0) FROM secret_versions v
		WHERE v.project = s.project AND v.env = s.env AND v.name = s.name)
		FROM secrets s WHERE s.project = $1 AND s.env = $2 AND s.name = $3`, project, env, name).Scan(&l.Current, &l.Latest)
	if err != nil {
		return found(l, err, "secret %s/%s/%s not found", project, env, name)
	}
	return l, queryEach(ctx, q, func(r rowScanner) error {
		var label, rot string
		var n int
		if err := r.Scan(&label, &n, &rot); err != nil {
			return err
		}
		switch label {
		case tokenward.LabelPending:
			l.Pending, l.PendingRotation = n, rot
		case tokenward.LabelPrevious:
			l.Previous = n
		}
		return nil
	}, `SELECT label, version, rotation_id FROM secret_labels WHERE project = $1 AND env = $2 AND name = $3`, project, env, name)
}

// labelTx runs fn in a transaction that holds the secret's row lock (as
// PutSecret takes it), with the labels read under it.
func (db *DB) labelTx(ctx context.Context, project, env, name string, fn func(pgx.Tx, *tokenward.VersionLabels) error) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := lockSecret(ctx, tx, project, env, name); err != nil {
			_, err = found(0, err, "secret %s/%s/%s not found", project, env, name)
			return err
		}
		l, err := secretLabels(ctx, tx, project, env, name)
		if err != nil {
			return err
		}
		return fn(tx, l)
	})
}

// PutPendingVersion implements tokenward.LabelStore.
func (db *DB) PutPendingVersion(ctx context.Context, project, env, name, rotationID string, v *tokenward.SecretVersion) error {
	return db.labelTx(ctx, project, env, name, func(tx pgx.Tx, l *tokenward.VersionLabels) error {
		if v.Version != l.Latest+1 {
			return tokenward.Errorf(tokenward.ECONFLICT, "secret %s/%s/%s: version %d is taken; the next is %d", project, env, name, v.Version, l.Latest+1)
		}
		if err := insertVersion(ctx, tx, project, env, name, v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO secret_labels (project, env, name, label, version, rotation_id) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (project, env, name, label) DO UPDATE SET version = excluded.version, rotation_id = excluded.rotation_id`,
			project, env, name, tokenward.LabelPending, v.Version, rotationID)
		return err
	})
}

// PromoteVersion implements tokenward.LabelStore.
func (db *DB) PromoteVersion(ctx context.Context, project, env, name string, n int, at time.Time) error {
	return db.labelTx(ctx, project, env, name, func(tx pgx.Tx, l *tokenward.VersionLabels) error {
		if l.Current == n {
			return nil // promoted already: a repeat after a crash
		}
		if l.Pending != n {
			return tokenward.Errorf(tokenward.ECONFLICT, "version %d of %s/%s/%s is not PENDING", n, project, env, name)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM secret_labels WHERE project = $1 AND env = $2 AND name = $3`, project, env, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO secret_labels (project, env, name, label, version) VALUES ($1, $2, $3, $4, $5)`,
			project, env, name, tokenward.LabelPrevious, l.Current); err != nil {
			return err
		}
		return setCurrent(ctx, tx, project, env, name, n, at)
	})
}

// RestoreVersion implements tokenward.LabelStore.
func (db *DB) RestoreVersion(ctx context.Context, project, env, name string, n int, at time.Time) error {
	return db.labelTx(ctx, project, env, name, func(tx pgx.Tx, l *tokenward.VersionLabels) error {
		if l.Current == n {
			return nil
		}
		if l.Previous != n || n == 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "version %d of %s/%s/%s is not PREVIOUS", n, project, env, name)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM secret_labels WHERE project = $1 AND env = $2 AND name = $3 AND label = $4`,
			project, env, name, tokenward.LabelPrevious); err != nil {
			return err
		}
		return setCurrent(ctx, tx, project, env, name, n, at)
	})
}

func setCurrent(ctx context.Context, tx pgx.Tx, project, env, name string, n int, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE secrets SET version = $1, updated_at = $2 WHERE project = $3 AND env = $4 AND name = $5`,
		n, at.UnixNano(), project, env, name)
	return dbError("write", err)
}

// UnlabelVersion implements tokenward.LabelStore.
func (db *DB) UnlabelVersion(ctx context.Context, project, env, name, label string, n int) error {
	if label != tokenward.LabelPending && label != tokenward.LabelPrevious {
		return tokenward.Errorf(tokenward.EINVALID, "only PENDING and PREVIOUS can be removed, not %q", label)
	}
	_, err := db.pool.Exec(ctx, `DELETE FROM secret_labels WHERE project = $1 AND env = $2 AND name = $3 AND label = $4 AND version = $5`,
		project, env, name, label, n)
	return dbError("write", err)
}

// AllSecrets lists every secret of every project (metadata only), by path:
// the catalog bulk rotation selects from.
func (db *DB) AllSecrets(ctx context.Context) ([]*tokenward.Secret, error) {
	return db.querySecrets(ctx, `ORDER BY project, env, name`)
}
