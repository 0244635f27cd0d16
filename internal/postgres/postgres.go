// Package postgres is tokenward's storage backend on PostgreSQL (13 or
// newer, no extensions), for several tokenward servers sharing one
// database. It implements the same interfaces as internal/sqlite and passes
// the same internal/storetest suites; it stores the same encodings (times as
// Unix nanoseconds, JSON as text, sealed values as bytes), so an install
// moves between the two by copying rows.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgerr"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the advisory lock key that serialises migrations when
// several servers start at once ("tokenward" in ASCII, as a bigint).
const migrationLock int64 = 0x746f6b656e77

// DB is a PostgreSQL database used as a tokenward.Store, through a pool of
// connections.
type DB struct {
	// URL is the connection string (postgres://… or key=value), with
	// sslmode, sslrootcert and the rest as libpq understands them.
	URL string
	// MaxConns is the pool size; 0 means pgxpool's default.
	MaxConns int32
	// Now is the clock, replaceable in tests.
	Now func() time.Time

	pool *pgxpool.Pool
}

// NewDB returns a DB for the database at url; call Open before use.
func NewDB(url string) *DB {
	return &DB{URL: url, Now: time.Now}
}

// Open connects, checks the database is reachable and applies migrations.
// Errors never repeat the URL, which may hold a password.
func (db *DB) Open(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		return errors.New("postgres: the storage URL does not parse (want postgres://user:password@host:port/db?sslmode=…)")
	}
	if db.MaxConns > 0 {
		cfg.MaxConns = db.MaxConns
	}
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return fmt.Errorf("postgres: %s", pgerr.Error(err))
	}
	if err := db.pool.Ping(ctx); err != nil {
		db.pool.Close()
		return fmt.Errorf("postgres: connect to %s: %s", cfg.ConnConfig.Host, pgerr.Error(err))
	}
	if err := db.migrate(ctx); err != nil {
		db.pool.Close()
		return err
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() error {
	if db.pool != nil {
		db.pool.Close()
	}
	return nil
}

type migration struct {
	version int
	name    string
}

// migrations lists the embedded migrations in order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	ms := make([]migration, len(names))
	for i, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("postgres: migration %s: name must start with a number", base)
		}
		ms[i] = migration{v, base}
	}
	return ms, nil
}

// migrate applies, in order and each in its own transaction, every embedded
// migration not yet recorded. A session advisory lock makes servers that
// start together take turns; a database with a migration this binary does
// not know was written by a newer tokenward and is refused.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %s", pgerr.Error(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: migration lock: %s", pgerr.Error(err))
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: migrations table: %s", pgerr.Error(err))
	}
	applied := map[int]bool{}
	rows, _ := conn.Query(ctx, `SELECT version, name FROM schema_migrations`)
	var unknown []string
	known := map[int]bool{}
	for _, m := range ms {
		known[m.version] = true
	}
	var v int
	var name string
	if _, err := pgx.ForEachRow(rows, []any{&v, &name}, func() error {
		applied[v] = true
		if !known[v] {
			unknown = append(unknown, name)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("postgres: read migrations: %s", pgerr.Error(err))
	}
	if len(unknown) > 0 {
		return fmt.Errorf("postgres: the database has migrations this tokenward does not know (%s): it was upgraded by a newer tokenward; run that version or newer", strings.Join(unknown, ", "))
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		body, err := migrationFS.ReadFile("migrations/" + m.name)
		if err != nil {
			return err
		}
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, m.version, m.name, db.Now().UnixNano())
			return err
		}); err != nil {
			return fmt.Errorf("postgres: migration %s: %s", m.name, pgerr.Error(err))
		}
	}
	return nil
}

// tx runs fn in a transaction, committing if it returns nil.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return dbError("transaction", pgx.BeginFunc(ctx, db.pool, fn))
}

// PostgreSQL error codes the stores branch on.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// isConstraint reports whether err is a uniqueness or primary-key violation.
func isConstraint(err error) bool { return pgerr.Code(err) == codeUniqueViolation }

func isForeignKey(err error) bool { return pgerr.Code(err) == codeForeignKeyViolation }

func notFound(format string, args ...any) error {
	return tokenward.Errorf(tokenward.ENOTFOUND, format, args...)
}

// dbError describes a failed operation without pgx's own text for errors
// from the server or a connection, which can quote the connection string;
// the cause stays reachable for errors.Is (context ends) and pgerr.Code.
// Domain errors, and errors dbError made, pass as they are.
func dbError(op string, err error) error {
	var te *tokenward.Error
	var de *opError
	if err == nil || errors.As(err, &te) || errors.As(err, &de) {
		return err
	}
	var ce *pgconn.ConnectError
	return &opError{op: op, err: err, fromServer: pgerr.Code(err) != "" || errors.As(err, &ce)}
}

type opError struct {
	op         string
	err        error
	fromServer bool // describe by pgerr.Error, never by err.Error()
}

func (e *opError) Error() string {
	if e.fromServer {
		return "postgres: " + e.op + ": " + pgerr.Error(e.err)
	}
	return "postgres: " + e.op + ": " + e.err.Error()
}

func (e *opError) Unwrap() error { return e.err }

// serverLock is the advisory lock a serving tokenward holds on its
// database ("twserve" in ASCII, as a bigint).
const serverLock int64 = 0x74777365727665

// ErrServerRunning is LockServer's refusal: another server holds the
// database.
var ErrServerRunning = tokenward.Errorf(tokenward.ECONFLICT,
	"another tokenward server is serving this PostgreSQL database; several servers on one database are not supported yet (they need one audit chain, shared caches and one scheduler)")

// LockServer takes the database for this server until release: a session
// advisory lock on a connection of its own, so a second server on the same
// database is refused (ErrServerRunning) rather than forking the audit chain
// and running every background job twice.
func (db *DB) LockServer(ctx context.Context) (release func(), err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, dbError("lock", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, serverLock).Scan(&ok); err != nil {
		conn.Release()
		return nil, dbError("lock", err)
	}
	if !ok {
		conn.Release()
		return nil, ErrServerRunning
	}
	return func() {
		conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, serverLock)
		conn.Release()
	}, nil
}
