package postgres

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

var _ tokenward.LeaseStore = (*DB)(nil)

// dollars numbers the ? placeholders of sqlrow's shared statements as
// PostgreSQL's $1, $2, …; the statements hold no ? of their own. It runs
// per call, not at package initialisation (TestStartupDoesNoEagerWork):
// a few hundred bytes beside a database round trip.
func dollars(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// lockSourceSQL takes a source's row for the transaction: the live leases
// of one source are counted and added by one server at a time.
const lockSourceSQL = `SELECT 1 FROM dynamic_sources WHERE project = $1 AND env = $2 AND name = $3 FOR UPDATE`

// lockTokenLeasesSQL does the same for a token's leases, without touching
// the tokens table (whose updates notify every server). Its lock is in the
// two-key space (class tokenLeasesLockClass), apart from the 64-bit keys
// of serverLock, which every server holds for its life: a token id hashed
// onto that key would have waited forever.
var lockTokenLeasesSQL = "SELECT pg_advisory_xact_lock(" + strconv.Itoa(tokenLeasesLockClass) + ", hashtext($1))"

// tokenLeasesLockClass is the first key of lockTokenLeasesSQL's locks.
const tokenLeasesLockClass = 0x74770002

// scopeLockClass is the first key of a scope's lock (the second is the
// hashtext of project/env, or project/* for a whole project): HoldScope
// takes it exclusively, CreateLease shared.
const scopeLockClass = 0x74770003

// HoldScope implements tokenward.LeaseStore: a session advisory lock on
// a connection of its own, so the hold ends with its session if this
// server dies.
func (db *DB) HoldScope(ctx context.Context, project, env string) (func(), error) {
	key := project + "/" + cmp.Or(env, "*")
	conn, err := pgx.ConnectConfig(ctx, db.sessionConfig())
	if err != nil {
		return nil, dbError("hold scope", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, scopeLockClass, key); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, dbError("hold scope", err)
	}
	return sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), lockPingTimeout)
		defer cancel()
		conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, scopeLockClass, key)
		conn.Close(ctx)
	}), nil
}

// PutDynamicSource implements tokenward.LeaseStore: not at a stored
// secret's path, checked under the path's lock (claimPath), nor a change
// of kind or config while a lease of the source is live
// (sqlrow.SourceChangeError), checked under the source's row lock.
func (db *DB) PutDynamicSource(ctx context.Context, s *tokenward.DynamicSource) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		taken, err := claimPath(ctx, tx, sqlrow.SecretAtPathSQL, s.Project, s.Env, s.Name)
		if err != nil {
			return err
		}
		if taken {
			return tokenward.SourceAtSecretPath(s.Project, s.Env, s.Name)
		}
		// The row lock orders this write with CreateLease, which takes it
		// too: a lease is counted here, or made with the new config.
		old, err := sqlrow.ScanDynamicSource(tx.QueryRow(ctx, dollars(sqlrow.DynamicSourceSQL)+" FOR UPDATE", s.Project, s.Env, s.Name))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			old = nil
		case err != nil:
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, dollars(sqlrow.LiveBySourceSQL), s.Project, s.Env, s.Name).Scan(&live); err != nil {
			return err
		}
		if err := sqlrow.SourceChangeError(old, s, live); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, dollars(sqlrow.PutDynamicSourceSQL), sqlrow.DynamicSourceArgs(s)...)
		return err
	})
	return dbError("put dynamic source", err)
}

// pathLock is the SQL expression that takes the advisory lock of the
// secret path project/env/name (SQL expressions: parameters or columns)
// until the transaction ends. claimPath and a restore build their locks
// here, so the two always meet on a path.
func pathLock(project, env, name string) string {
	return "pg_advisory_xact_lock(" + strconv.Itoa(pathLockClass) + ", hashtext(" + project + " || '/' || " + env + " || '/' || " + name + "))"
}

// pathLockClass is the first key of pathLock's locks: two 32-bit keys are
// a key space apart from the 64-bit keys of serverLock and migrationLock,
// so a path's hash never meets those (nor a token's leases' lock, whose
// class is tokenLeasesLockClass).
const pathLockClass = 0x74770001

// claimPath locks a secret path until tx ends (pathLock), then reports
// whether query (sqlrow.SourceAtPathSQL, SecretAtPathSQL) counts a row at
// it. A secret's creation and a source's write both take the lock first,
// so under READ COMMITTED the second of two racing writers sees the first
// one's row instead of both finding the path free.
func claimPath(ctx context.Context, tx pgx.Tx, query, project, env, name string) (bool, error) {
	if _, err := tx.Exec(ctx, "SELECT "+pathLock("$1::text", "$2::text", "$3::text"), project, env, name); err != nil {
		return false, err
	}
	var n int
	err := tx.QueryRow(ctx, dollars(query), project, env, name).Scan(&n)
	return n > 0, err
}

// DynamicSource implements tokenward.LeaseStore.
func (db *DB) DynamicSource(ctx context.Context, project, env, name string) (*tokenward.DynamicSource, error) {
	s, err := sqlrow.ScanDynamicSource(db.pool.QueryRow(ctx, dollars(sqlrow.DynamicSourceSQL), project, env, name))
	return found(s, err, "dynamic source %s/%s/%s not found", tokenward.Printable(project), tokenward.Printable(env), tokenward.Printable(name))
}

// DynamicSources implements tokenward.LeaseStore.
func (db *DB) DynamicSources(ctx context.Context) ([]*tokenward.DynamicSource, error) {
	return queryAll(ctx, db.pool, sqlrow.ScanDynamicSource, sqlrow.DynamicSourcesSQL)
}

// lockSource takes the source's row; ENOTFOUND when it does not exist.
func lockSource(ctx context.Context, tx pgx.Tx, project, env, name string) error {
	var one int
	_, err := found(one, tx.QueryRow(ctx, lockSourceSQL, project, env, name).Scan(&one),
		"dynamic source %s/%s/%s not found", tokenward.Printable(project), tokenward.Printable(env), tokenward.Printable(name))
	return err
}

// DeleteDynamicSource implements tokenward.LeaseStore.
func (db *DB) DeleteDynamicSource(ctx context.Context, project, env, name string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := lockSource(ctx, tx, project, env, name); err != nil {
			return err
		}
		var live int
		if err := tx.QueryRow(ctx, dollars(sqlrow.LiveBySourceSQL), project, env, name).Scan(&live); err != nil {
			return err
		}
		if live > 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "dynamic source %s/%s/%s has %d live leases; revoke them first",
				tokenward.Printable(project), tokenward.Printable(env), tokenward.Printable(name), live)
		}
		tag, err := tx.Exec(ctx, dollars(sqlrow.DeleteSourceSQL), project, env, name)
		return changedRow(tag, err, "dynamic source %s/%s/%s not found", tokenward.Printable(project), tokenward.Printable(env), tokenward.Printable(name))
	})
}

// CreateLease implements tokenward.LeaseStore. The source's row lock and
// the token's advisory lock, taken in that order, make the counts and the
// insert one step across every server.
func (db *DB) CreateLease(ctx context.Context, l *tokenward.Lease, limits tokenward.LeaseLimits) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		// Shared: leases go on side by side, and wait while a retirement
		// holds the scope (HoldScope); then the archive is seen.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1, hashtext($2)), pg_advisory_xact_lock_shared($1, hashtext($3))",
			scopeLockClass, l.Project+"/*", l.Project+"/"+l.Env); err != nil {
			return err
		}
		var archived int
		if err := tx.QueryRow(ctx, dollars(sqlrow.ArchivedEnvSQL), l.Project, l.Env).Scan(&archived); err != nil {
			return err
		}
		if archived > 0 {
			return tokenward.LeaseInRetiredEnv(l.Project, l.Env)
		}
		if err := lockSource(ctx, tx, l.Project, l.Env, l.Name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, lockTokenLeasesSQL, l.TokenID); err != nil {
			return err
		}
		var bySource, byToken int
		if err := tx.QueryRow(ctx, dollars(sqlrow.LiveBySourceSQL), l.Project, l.Env, l.Name).Scan(&bySource); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, dollars(sqlrow.LiveByTokenSQL), l.TokenID).Scan(&byToken); err != nil {
			return err
		}
		if err := sqlrow.LeaseLimitError(l, limits, bySource, byToken); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, dollars(sqlrow.InsertLeaseSQL), sqlrow.LeaseArgs(l)...)
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "lease %s or its role exists already", tokenward.Printable(l.ID))
		}
		return err
	})
}

// UpdateLease implements tokenward.LeaseStore.
func (db *DB) UpdateLease(ctx context.Context, l *tokenward.Lease, from tokenward.LeaseState) error {
	tag, err := db.pool.Exec(ctx, dollars(sqlrow.UpdateLeaseSQL), append(sqlrow.LeaseUpdateArgs(l), string(from))...)
	if err != nil || tag.RowsAffected() == 1 {
		return dbError("update lease", err)
	}
	var n int
	if err := db.pool.QueryRow(ctx, dollars(sqlrow.LeaseExistsSQL), l.ID).Scan(&n); err != nil {
		return dbError("update lease", err)
	}
	return sqlrow.LeaseUpdateError(l.ID, from, n > 0)
}

// Lease implements tokenward.LeaseStore.
func (db *DB) Lease(ctx context.Context, id string) (*tokenward.Lease, error) {
	l, err := sqlrow.ScanLease(db.pool.QueryRow(ctx, dollars(sqlrow.LeaseSQL), id))
	return found(l, err, "lease %s not found", tokenward.Printable(id))
}

// Leases implements tokenward.LeaseStore.
func (db *DB) Leases(ctx context.Context, f tokenward.LeaseFilter) ([]*tokenward.Lease, error) {
	q, args := sqlrow.LeasesSQL(f)
	return queryAll(ctx, db.pool, sqlrow.ScanLease, dollars(q), args...)
}

// DueLeases implements tokenward.LeaseStore.
func (db *DB) DueLeases(ctx context.Context, now, staleBefore time.Time, limit int) ([]*tokenward.Lease, error) {
	n := sqlrow.Nanos(now)
	return queryAll(ctx, db.pool, sqlrow.ScanLease, dollars(sqlrow.DueLeasesSQL), n, n, sqlrow.Nanos(staleBefore), n, limit)
}

// PruneLeases implements tokenward.LeaseStore.
func (db *DB) PruneLeases(ctx context.Context, before time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, dollars(sqlrow.PruneLeasesSQL), sqlrow.Nanos(before))
	return int(tag.RowsAffected()), dbError("prune leases", err)
}
