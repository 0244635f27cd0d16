// Package postgres is tokenward's storage backend on PostgreSQL (13 or
// newer, no extensions), for several tokenward servers sharing one
// database. It implements the same interfaces as internal/sqlite and passes
// the same internal/storetest suites; it stores the same encodings (times as
// Unix nanoseconds, JSON as text, sealed values as bytes), so an install
// moves between the two by copying rows.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgerr"
	"github.com/tokenward/tokenward/internal/readcache"
	"github.com/tokenward/tokenward/internal/sqlrow"
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
	// ConnectTimeout bounds each connection attempt when the URL sets no
	// connect_timeout (default DefaultConnectTimeout), so that a request
	// fails within it while the database is unreachable instead of
	// waiting for the operating system to give up on the dial.
	ConnectTimeout time.Duration
	// LockCheckInterval is how often the server and leader locks'
	// connections are checked, and how often a lost server lock or a
	// leader lock held by another server is tried again (LockServer,
	// Lead).
	LockCheckInterval time.Duration
	// Logger receives the server lock's losses and recoveries; nil
	// discards them. Never a URL or a password.
	Logger *slog.Logger
	// Now is the clock, replaceable in tests.
	Now func() time.Time
	// ListenCheckInterval and MaxStaleness time the change clock
	// (notify.go); zero means DefaultListenCheckInterval and
	// DefaultMaxStaleness.
	ListenCheckInterval time.Duration
	MaxStaleness        time.Duration

	pool     *pgxpool.Pool
	clock    *changeClock
	ciRefs   sqlrow.CIRefs // the audit_ci rows known (audit.go)
	listener *listener
	// Cache answers CurrentSecret, Secrets, EnvSecrets and Token
	// while the change clock has not moved (notify.go).
	*readcache.Cache

	// leadSession is the session the leader lock was last taken on
	// (Lead), so that one the database keeps after its connection broke
	// is recognised as this DB's own.
	leadMu      sync.Mutex
	leadSession session
}

// DefaultConnectTimeout bounds a connection attempt when neither the URL
// (connect_timeout) nor DB.ConnectTimeout says otherwise.
const DefaultConnectTimeout = 5 * time.Second

// pingTimeout bounds the liveness check pgxpool runs on a connection idle
// for more than a second before handing it out: a connection to a
// database that went away is dropped within it and a new one dialled.
const pingTimeout = time.Second

// NewDB returns a DB for the database at url; call Open before use.
func NewDB(url string) *DB {
	return &DB{URL: url, Now: time.Now, ConnectTimeout: DefaultConnectTimeout, LockCheckInterval: time.Second}
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
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		// pgxpool would wait up to two minutes for a dial that hangs.
		cfg.ConnConfig.ConnectTimeout = cmp.Or(db.ConnectTimeout, DefaultConnectTimeout)
	}
	cfg.PingTimeout = pingTimeout
	db.clock = newChangeClock()
	db.Cache = readcache.New(db, readcache.Loaders{CurrentSecret: db.currentSecret, Secrets: db.secrets, EnvSecrets: db.envSecrets, Token: db.token})
	cfg.ConnConfig.Tracer = changeTracer{db.clock}
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
	db.startListener()
	return nil
}

// Close stops the change listener and closes the pool.
func (db *DB) Close() error {
	if db.listener != nil {
		db.listener.close()
		db.listener = nil
	}
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
	// codeUnstorableText: a text parameter holds a NUL byte or invalid
	// UTF-8, which PostgreSQL's text cannot hold (nor, so, any row).
	codeUnstorableText = "22021"
)

// isUnstorableText reports whether err is a text parameter refused as
// codeUnstorableText: a lookup by such a client's text matches no row.
func isUnstorableText(err error) bool { return pgerr.Code(err) == codeUnstorableText }

// isConstraint reports whether err is a uniqueness or primary-key violation.
func isConstraint(err error) bool { return pgerr.Code(err) == codeUniqueViolation }

func isForeignKey(err error) bool { return pgerr.Code(err) == codeForeignKeyViolation }

func notFound(format string, args ...any) error {
	return tokenward.Errorf(tokenward.ENOTFOUND, format, args...)
}

// ErrUnavailable is what a client is told when the database cannot be
// reached or dropped the connection (EUNAVAILABLE, answered 503): every
// store method's error carries it then, through dbError, so a request
// fails at once with a reason to retry rather than a 500. The cause stays
// in the error for the server's log.
var ErrUnavailable = tokenward.Errorf(tokenward.EUNAVAILABLE, "database unavailable; retry")

// dbError describes a failed operation without pgx's own text for errors
// from the server or a connection, which can quote the connection string;
// the cause stays reachable for errors.Is (context ends) and pgerr.Code.
// A failure to reach the database is also ErrUnavailable. Domain errors,
// and errors dbError made, pass as they are.
func dbError(op string, err error) error {
	var te *tokenward.Error
	var de *opError
	if err == nil || errors.As(err, &te) || errors.As(err, &de) {
		return err
	}
	var ce *pgconn.ConnectError
	down := unreachable(err)
	return &opError{op: op, err: err, unavailable: down, invalid: isUnstorableText(err),
		fromServer: down || pgerr.Code(err) != "" || errors.As(err, &ce)}
}

// unreachable reports whether err means the database could not be reached
// or lost the connection — a failure of the moment that a retry may not
// meet — rather than a refusal of the statement: a failed connection
// attempt (refused, timed out, the server starting up or shutting down, a
// password no longer accepted), a connection that broke or closed, the
// server ending the session (SQLSTATE class 08, 57P01–57P03, 53300 too many
// connections), or a deadline that ran out waiting for it. A cancelled
// context is the caller leaving, not the database.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	code := pgerr.Code(err)
	switch {
	case errors.As(err, &ce):
		return true
	case errors.Is(err, context.Canceled):
		return false
	case code != "":
		switch code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(code, "08")
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne)
}

type opError struct {
	op          string
	err         error
	fromServer  bool // describe by pgerr.Error, never by err.Error()
	unavailable bool // the chain holds ErrUnavailable too
	invalid     bool // the chain holds errUnstorableText too
}

// errUnstorableText is a write of a client's text that PostgreSQL's text
// cannot hold (isUnstorableText): the client's mistake, answered 400.
var errUnstorableText = tokenward.Errorf(tokenward.EINVALID, "text holding a NUL byte or invalid UTF-8 cannot be stored")

func (e *opError) Error() string {
	if e.fromServer {
		return "postgres: " + e.op + ": " + pgerr.Error(e.err)
	}
	return "postgres: " + e.op + ": " + e.err.Error()
}

func (e *opError) Unwrap() []error {
	if e.unavailable {
		return []error{ErrUnavailable, e.err}
	}
	if e.invalid {
		return []error{errUnstorableText, e.err}
	}
	return []error{e.err}
}

// Ping reports whether the database answers within ctx (the readiness
// check gives it a second); its error is ErrUnavailable when it does not.
func (db *DB) Ping(ctx context.Context) error {
	return dbError("ping", db.pool.Ping(ctx))
}

// serverLock is the advisory lock on a database that every serving
// tokenward holds shared and `tokenward migrate` holds exclusively
// ("twserve" in ASCII, as a bigint).
const serverLock int64 = 0x74777365727665

// ErrServerRunning is LockMigration's refusal: a tokenward server serves
// the database.
var ErrServerRunning = tokenward.Errorf(tokenward.ECONFLICT,
	"a tokenward server is serving this PostgreSQL database")

// ErrMigrating is LockServer's refusal: `tokenward migrate` holds the
// database.
var ErrMigrating = tokenward.Errorf(tokenward.ECONFLICT,
	"tokenward migrate is copying this PostgreSQL database; start the server once it is done")

// lockPingTimeout is how long a lock's connection may take to answer its
// check before it is taken for dead.
const lockPingTimeout = 5 * time.Second

// LockServer takes the server lock shared, until release: a session
// advisory lock on a connection of its own (outside the pool). Every
// server on a database holds it, so servers start beside each other, but
// `tokenward migrate` (LockMigration, exclusive) is refused while any
// server runs, and a server is refused (ErrMigrating) while a migration
// runs.
//
// A session lock lives as long as its connection: when the database
// restarts, or the connection breaks, the lock is gone. LockServer checks
// the connection every LockCheckInterval; when it fails, it logs that the
// lock is lost and takes it again as soon as the database answers. If the
// old session is still alive on the server (the network broke, not the
// database), LockServer ends it, so it does not hold the lock on after
// this server moved on. If a migration took the lock while this server's
// connection was down, lost is called once with ErrMigrating, and the
// caller must stop serving. release stops the checks and gives the lock
// back.
func (db *DB) LockServer(ctx context.Context, lost func(error)) (release func(), err error) {
	return db.lock(ctx, false, lost)
}

// LockMigration takes the server lock exclusively, as LockServer does
// shared: it is refused with ErrServerRunning while any server holds the
// database, and no server starts until release.
func (db *DB) LockMigration(ctx context.Context, lost func(error)) (release func(), err error) {
	return db.lock(ctx, true, lost)
}

func (db *DB) lock(ctx context.Context, exclusive bool, lost func(error)) (release func(), err error) {
	l := &lockHolder{db: db, exclusive: exclusive, lost: lost, log: db.logger(), stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.take(ctx); err != nil {
		return nil, err
	}
	go l.watch() // #nosec G118 -- the lock watcher outlives the call that took the lock; release stops it
	var once sync.Once
	return func() {
		once.Do(func() {
			close(l.stop)
			<-l.done
			if l.conn != nil {
				ctx, cancel := context.WithTimeout(context.Background(), lockPingTimeout)
				defer cancel()
				l.conn.Exec(ctx, `SELECT pg_advisory_unlock`+l.suffix()+`($1)`, serverLock)
				l.conn.Close(ctx)
			}
		})
	}, nil
}

func (db *DB) logger() *slog.Logger {
	if db.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return db.Logger
}

// sessionConfig is the configuration of a connection that holds a session
// lock (server lock, leader lock, rotation claims): the pool's, with TCP
// keepalives short enough that the database ends the session, and frees
// its locks, within about 15 s of its client vanishing without closing
// the connection (a machine that lost power, a network that broke). Over a
// Unix socket the keepalive settings are ignored, and not needed.
func (db *DB) sessionConfig() *pgx.ConnConfig {
	cfg := db.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["tcp_keepalives_idle"] = "5"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "2"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	return cfg
}

// session names a database session: its pid and start time, since a pid
// is reused.
type session struct {
	pid     uint32
	started time.Time
}

// connectSession connects with sessionConfig and names the session.
func (db *DB) connectSession(ctx context.Context) (*pgx.Conn, session, error) {
	conn, err := pgx.ConnectConfig(ctx, db.sessionConfig())
	if err != nil {
		return nil, session{}, err
	}
	s := session{pid: conn.PgConn().PID()}
	if err := conn.QueryRow(ctx, `SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&s.started); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, session{}, err
	}
	return conn, s, nil
}

// endSession ends old through conn if the database still keeps it, and
// reports whether it did. A session whose client's connection broke lives
// on in the database, holding its locks, until the database notices.
func endSession(ctx context.Context, conn *pgx.Conn, old session) (bool, error) {
	if old.pid == 0 {
		return false, nil
	}
	var n int
	err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2`,
		int64(old.pid), old.started).Scan(&n)
	return n > 0, err
}

// lockHolder keeps the server lock (LockServer, LockMigration).
type lockHolder struct {
	db        *DB
	exclusive bool
	lost      func(error)
	log       *slog.Logger
	stop      chan struct{}
	done      chan struct{}

	// conn holds the lock; nil while it is lost. Only take, watch and
	// release (after watch ended) touch it.
	conn *pgx.Conn
	// held names the session that holds (or held) the lock, so that a
	// session the database still keeps after its connection broke is
	// recognised as this holder's own.
	held session
}

// suffix selects the advisory lock functions of the holder's mode.
func (l *lockHolder) suffix() string {
	if l.exclusive {
		return ""
	}
	return "_shared"
}

// refused reports whether err is a refusal of the lock: ErrMigrating or
// ErrServerRunning.
func refused(err error) bool {
	return errors.Is(err, ErrMigrating) || errors.Is(err, ErrServerRunning)
}

// take connects and takes the lock, or returns why it cannot: ErrMigrating
// when a migration holds it, ErrServerRunning when servers do.
func (l *lockHolder) take(ctx context.Context) error {
	conn, s, err := l.db.connectSession(ctx)
	if err != nil {
		return dbError("lock", err)
	}
	var ok, migrating bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock`+l.suffix()+`($1)`, serverLock).Scan(&ok)
	if err == nil && !ok {
		// Which holder refused: the exclusive one is a migration.
		err = conn.QueryRow(ctx, `SELECT coalesce(bool_or(mode = 'ExclusiveLock'), false) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND objsubid = 1
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid`, serverLock).Scan(&migrating)
	}
	if err != nil || !ok {
		conn.Close(context.WithoutCancel(ctx))
		switch {
		case err != nil:
			return dbError("lock", err)
		case migrating:
			return ErrMigrating
		}
		return ErrServerRunning
	}
	l.conn, l.held = conn, s
	return nil
}

// watch checks the lock's connection until release, and takes the lock
// again after it was lost.
func (l *lockHolder) watch() {
	defer close(l.done)
	t := time.NewTicker(cmp.Or(l.db.LockCheckInterval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockPingTimeout)
		if l.conn != nil {
			err := l.conn.Ping(ctx)
			if err == nil {
				cancel()
				continue
			}
			l.log.Error("database unreachable: the connection holding the server lock failed; requests fail with 503 until the database answers again, then the lock is taken again",
				"err", dbError("lock", err))
			l.conn.Close(ctx)
			l.conn = nil
		}
		err := l.retake(ctx)
		cancel()
		switch {
		case err == nil:
			l.log.Info("database reachable again: server lock taken again")
		case refused(err):
			if errors.Is(err, ErrMigrating) {
				l.log.Error("tokenward migrate took this database while this process's connection was down; stopping")
			} else {
				l.log.Error("a tokenward server started on this database while this migration's connection was down; stopping")
			}
			if l.lost != nil {
				l.lost(err)
			}
			return
		default:
			l.log.Debug("server lock not taken yet", "err", err)
		}
	}
}

// retake takes the lock on a new connection, and ends this holder's old
// session if the database still keeps it: beside the new one when the
// lock is shared, and before the lock can be had when it is exclusive
// (then it asks to be called again). Only a holder that is not its own
// old session is a refusal.
func (l *lockHolder) retake(ctx context.Context) error {
	old := l.held
	err := l.take(ctx)
	if err != nil && !refused(err) {
		return err
	}
	conn := l.conn
	if err != nil {
		c, cerr := pgx.ConnectConfig(ctx, l.db.sessionConfig())
		if cerr != nil {
			return dbError("lock", cerr)
		}
		defer c.Close(context.WithoutCancel(ctx))
		conn = c
	}
	ended, eerr := endSession(ctx, conn, old)
	if eerr != nil && err != nil {
		return dbError("lock", eerr)
	}
	if ended {
		l.log.Warn("ended this server's old database session, which still held the server lock after its connection broke")
		if err != nil {
			return dbError("lock", errors.New("the old session is ending"))
		}
	}
	return err
}
