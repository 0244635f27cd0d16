package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// VersionStates implements tokenward.VersionDeleteStore.
func (db *DB) VersionStates(ctx context.Context, project, env, name string) (map[int]tokenward.VersionState, error) {
	out := map[int]tokenward.VersionState{}
	err := queryEach(ctx, db.pool, func(r rowScanner) error {
		v, st, err := sqlrow.ScanVersionState(r)
		out[v] = st
		return err
	}, `SELECT `+sqlrow.VersionStateCols+` FROM secret_versions
		WHERE project = $1 AND env = $2 AND name = $3 AND (deleted_at IS NOT NULL OR destroyed_at IS NOT NULL)`, project, env, name)
	return out, err
}

// DeleteVersions implements tokenward.VersionDeleteStore.
func (db *DB) DeleteVersions(ctx context.Context, project, env, name string, versions []int, at time.Time) error {
	return db.changeVersions(ctx, project, env, name, versions,
		`UPDATE secret_versions SET deleted_at = $5 WHERE project = $1 AND env = $2 AND name = $3 AND version = $4 AND deleted_at IS NULL AND destroyed_at IS NULL`, at)
}

// UndeleteVersions implements tokenward.VersionDeleteStore.
func (db *DB) UndeleteVersions(ctx context.Context, project, env, name string, versions []int) error {
	return db.changeVersions(ctx, project, env, name, versions,
		`UPDATE secret_versions SET deleted_at = NULL WHERE project = $1 AND env = $2 AND name = $3 AND version = $4`, time.Time{})
}

// DestroyVersions implements tokenward.VersionDeleteStore.
func (db *DB) DestroyVersions(ctx context.Context, project, env, name string, versions []int, at time.Time) error {
	return db.changeVersions(ctx, project, env, name, versions,
		`UPDATE secret_versions SET ciphertext = '\x'::bytea, destroyed_at = $5 WHERE project = $1 AND env = $2 AND name = $3 AND version = $4 AND destroyed_at IS NULL`, at)
}

// changeVersions runs update (with at as $5, unless zero) on each version
// in one transaction, after checking every version exists.
func (db *DB) changeVersions(ctx context.Context, project, env, name string, versions []int, update string, at time.Time) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		for _, v := range versions {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM secret_versions WHERE project = $1 AND env = $2 AND name = $3 AND version = $4`,
				project, env, name, v).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return notFound("secret %s/%s/%s has no version %d", project, env, name, v)
			}
			args := []any{project, env, name, v}
			if !at.IsZero() {
				args = append(args, at.UnixNano())
			}
			if _, err := tx.Exec(ctx, update, args...); err != nil {
				return err
			}
		}
		return nil
	})
}
