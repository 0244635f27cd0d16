package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

var _ tokenward.LeaseStore = (*DB)(nil)

// PutDynamicSource implements tokenward.LeaseStore: not at a stored
// secret's path, nor a change of kind or config while a lease of the
// source is live (sqlrow.SourceChangeError); the write transaction is
// IMMEDIATE, so no secret or lease can be created between the checks and
// the insert.
func (db *DB) PutDynamicSource(ctx context.Context, s *tokenward.DynamicSource) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		taken, err := holds(ctx, tx, sqlrow.SecretAtPathSQL, s.Project, s.Env, s.Name)
		if err != nil {
			return err
		}
		if taken {
			return tokenward.SourceAtSecretPath(s.Project, s.Env, s.Name)
		}
		old, err := sqlrow.ScanDynamicSource(tx.QueryRowContext(ctx, sqlrow.DynamicSourceSQL, s.Project, s.Env, s.Name))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			old = nil
		case err != nil:
			return err
		}
		var live int
		if err := tx.QueryRowContext(ctx, sqlrow.LiveBySourceSQL, s.Project, s.Env, s.Name).Scan(&live); err != nil {
			return err
		}
		if err := sqlrow.SourceChangeError(old, s, live); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, sqlrow.PutDynamicSourceSQL, sqlrow.DynamicSourceArgs(s)...)
		return err
	})
}

// holds reports whether query (sqlrow.SourceAtPathSQL, SecretAtPathSQL)
// counts a row at the path.
func holds(ctx context.Context, q queryer, query, project, env, name string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, query, project, env, name).Scan(&n)
	return n > 0, err
}

// DynamicSource implements tokenward.LeaseStore.
func (db *DB) DynamicSource(ctx context.Context, project, env, name string) (*tokenward.DynamicSource, error) {
	s, err := sqlrow.ScanDynamicSource(db.read.QueryRowContext(ctx, sqlrow.DynamicSourceSQL, project, env, name))
	return found(s, err, "dynamic source %s/%s/%s not found", printable(project), printable(env), printable(name))
}

// DynamicSources implements tokenward.LeaseStore.
func (db *DB) DynamicSources(ctx context.Context) ([]*tokenward.DynamicSource, error) {
	return queryAll(ctx, db.read, sqlrow.ScanDynamicSource, sqlrow.DynamicSourcesSQL)
}

// DeleteDynamicSource implements tokenward.LeaseStore.
func (db *DB) DeleteDynamicSource(ctx context.Context, project, env, name string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var live int
		if err := tx.QueryRowContext(ctx, sqlrow.LiveBySourceSQL, project, env, name).Scan(&live); err != nil {
			return err
		}
		if live > 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "dynamic source %s/%s/%s has %d live leases; revoke them first", printable(project), printable(env), printable(name), live)
		}
		res, err := tx.ExecContext(ctx, sqlrow.DeleteSourceSQL, project, env, name)
		return changedRow(res, err, "dynamic source %s/%s/%s not found", printable(project), printable(env), printable(name))
	})
}

// CreateLease implements tokenward.LeaseStore. The counts and the insert
// share a transaction on the one write connection, so the caps hold.
func (db *DB) CreateLease(ctx context.Context, l *tokenward.Lease, limits tokenward.LeaseLimits) error {
	release, err := db.scopes.hold(ctx, false, l.Project+"/*", l.Project+"/"+l.Env)
	if err != nil {
		return err
	}
	defer release()
	return db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM dynamic_sources WHERE project = ? AND env = ? AND name = ?`, l.Project, l.Env, l.Name).Scan(&n)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("dynamic source %s not found", printable(l.Source()))
		}
		if err := tx.QueryRowContext(ctx, sqlrow.ArchivedEnvSQL, l.Project, l.Env).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return tokenward.LeaseInRetiredEnv(l.Project, l.Env)
		}
		if err := checkLeaseLimits(ctx, tx, l, limits); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, sqlrow.InsertLeaseSQL, sqlrow.LeaseArgs(l)...)
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "lease %s or its role exists already", printable(l.ID))
		}
		return err
	})
}

// HoldScope implements tokenward.LeaseStore. One server uses a SQLite
// file (the data directory's server lock), so the hold is this process's.
func (db *DB) HoldScope(ctx context.Context, project, env string) (func(), error) {
	return db.scopes.hold(ctx, true, project+"/"+cmp.Or(env, "*"))
}

// checkLeaseLimits counts the live leases of l's source and token.
func checkLeaseLimits(ctx context.Context, tx *sql.Tx, l *tokenward.Lease, limits tokenward.LeaseLimits) error {
	var bySource, byToken int
	if err := tx.QueryRowContext(ctx, sqlrow.LiveBySourceSQL, l.Project, l.Env, l.Name).Scan(&bySource); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, sqlrow.LiveByTokenSQL, l.TokenID).Scan(&byToken); err != nil {
		return err
	}
	return sqlrow.LeaseLimitError(l, limits, bySource, byToken)
}

// UpdateLease implements tokenward.LeaseStore.
func (db *DB) UpdateLease(ctx context.Context, l *tokenward.Lease, from tokenward.LeaseState) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlrow.UpdateLeaseSQL, append(sqlrow.LeaseUpdateArgs(l), string(from))...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, sqlrow.LeaseExistsSQL, l.ID).Scan(&n); err != nil {
			return err
		}
		return sqlrow.LeaseUpdateError(l.ID, from, n > 0)
	})
}

// Lease implements tokenward.LeaseStore. It reads through the write
// connection, so a caller sees its own last update at once.
func (db *DB) Lease(ctx context.Context, id string) (*tokenward.Lease, error) {
	l, err := sqlrow.ScanLease(db.write.QueryRowContext(ctx, sqlrow.LeaseSQL, id))
	return found(l, err, "lease %s not found", printable(id))
}

// Leases implements tokenward.LeaseStore.
func (db *DB) Leases(ctx context.Context, f tokenward.LeaseFilter) ([]*tokenward.Lease, error) {
	q, args := sqlrow.LeasesSQL(f)
	return queryAll(ctx, db.read, sqlrow.ScanLease, q, args...)
}

// DueLeases implements tokenward.LeaseStore.
func (db *DB) DueLeases(ctx context.Context, now, staleBefore time.Time, limit int) ([]*tokenward.Lease, error) {
	n := sqlrow.Nanos(now)
	return queryAll(ctx, db.write, sqlrow.ScanLease, sqlrow.DueLeasesSQL, n, n, sqlrow.Nanos(staleBefore), n, limit)
}

// PruneLeases implements tokenward.LeaseStore.
func (db *DB) PruneLeases(ctx context.Context, before time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, sqlrow.PruneLeasesSQL, sqlrow.Nanos(before))
	if err != nil {
		return 0, diskFull(err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
