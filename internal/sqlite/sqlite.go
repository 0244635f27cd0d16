// Package sqlite is tokenward's embedded storage backend: SQLite in pure Go
// (modernc.org/sqlite, no cgo), in WAL mode, with every change in one
// transaction and every commit durable.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/groupcommit"
	"github.com/tokenward/tokenward/internal/readcache"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is a SQLite database file used as a tokenward.Store. Reads go through
// a pool of connections; writes through one connection, so writers queue in
// Go instead of spinning on SQLite's busy lock.
type DB struct {
	// Path is the database file.
	Path string
	// file is the database file as SQLite opened it (Path with symbolic
	// links resolved), which names its -wal and -shm files; set by Open.
	file string
	// Now is the clock, replaceable in tests.
	Now func() time.Time

	read  *sql.DB
	write *sql.DB

	puts groupcommit.Group[*putReq] // group commit of secret writes (putgroup.go)

	// Hot read statements, prepared once: SQLite's parser is the largest
	// cost of a small query.
	stmtTokenByHash    *sql.Stmt
	stmtSecret         *sql.Stmt
	stmtSecretVersion  *sql.Stmt
	stmtCurrentVersion *sql.Stmt
	stmtAuditInsert    *sql.Stmt // on the write connection

	ciRefs sqlrow.CIRefs // the audit_ci rows known (audit.go)

	scopes scopeHolds // HoldScope's holds (scopehold.go)

	clock *walClock
	// Cache answers CurrentSecret, Secrets, EnvSecrets and Token
	// (readcache.go).
	*readcache.Cache
}

// NewDB returns a DB for the file at path; call Open before use.
func NewDB(path string) *DB {
	db := &DB{Path: path, Now: time.Now}
	db.puts.Max = maxPutGroup
	return db
}

// Open opens the database, creating it if needed, and applies migrations.
func (db *DB) Open() error {
	if db.Path == "" {
		return errors.New("sqlite: no database path")
	}
	pragmas := []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(FULL)"}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append(pragmas, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + uriPath(db.Path) + "?" + q.Encode()
	}
	// Create the file 0600 ourselves; SQLite gives its WAL and shared-memory
	// files the same mode.
	f, err := os.OpenFile(db.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	f.Close()
	if db.write, err = sql.Open("sqlite", dsn()+"&_txlock=immediate"); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", db.Path, err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	if err := db.migrate(context.Background()); err != nil {
		db.write.Close()
		return err
	}
	if db.read, err = sql.Open("sqlite", dsn("query_only(1)")); err != nil {
		db.write.Close()
		return fmt.Errorf("sqlite: open %s: %w", db.Path, err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0)) + 1 // one is held by the read cache
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	db.read.SetConnMaxLifetime(0)
	if db.stmtAuditInsert, err = db.write.Prepare(`INSERT INTO audit_entries (` + sqlrow.AuditInsertCols + `) VALUES ` + auditRowParams); err != nil {
		db.Close()
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		q    string
	}{
		{&db.stmtTokenByHash, `SELECT ` + sqlrow.TokenCols + ` FROM tokens WHERE hash = ?`},
		{&db.stmtSecret, `SELECT ` + sqlrow.SecretCols + ` FROM secrets WHERE project = ? AND env = ? AND name = ?`},
		{&db.stmtSecretVersion, `SELECT ciphertext, created_at, created_by FROM secret_versions WHERE project = ? AND env = ? AND name = ? AND version = ?`},
		{&db.stmtCurrentVersion, `SELECT ` + sqlrow.SecretColsS + `, v.ciphertext, v.created_at, v.created_by FROM secrets s JOIN secret_versions v
			ON v.project = s.project AND v.env = s.env AND v.name = s.name AND v.version = s.version
			WHERE s.project = ? AND s.env = ? AND s.name = ?`},
	} {
		if *p.stmt, err = db.read.Prepare(p.q); err != nil {
			db.Close()
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
	}
	if err := db.openCurrentCache(context.Background()); err != nil {
		db.Close()
		return fmt.Errorf("sqlite: read cache: %w", err)
	}
	return nil
}

// uriPath escapes the characters of path that a SQLite URI filename would
// read otherwise: '%' (an escape), '?' (the parameters; the driver also
// splits the DSN at the first one) and '#' (a fragment). Unescaped, a data
// directory named "data#1" had SQLite create its database at "data".
func uriPath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
}

// Close closes the database.
func (db *DB) Close() error {
	if db.clock != nil {
		db.clock.close()
		db.clock = nil
	}
	var errs []error
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	return errors.Join(errs...)
}

// Ping reports whether the database can be read: a query on the read pool
// that reads the schema (the readiness check gives it a second).
//
// Unlike internal/postgres, no SQLite error but a full disk is made
// EUNAVAILABLE (503): an embedded file has no outage to ride out.
// SQLITE_BUSY reaches a caller only after busy_timeout (10 s) of another
// process holding the write lock — this server's own writers queue in Go on
// one connection — which is an operator's problem, not a request's; and I/O
// errors or a corrupt file need an operator too. Those stay internal
// errors: a 500 with a generic message, and logged, which a 503 would not
// be. A full disk (SQLITE_FULL) is the exception, see diskFull.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// migrate applies, in order and each in its own transaction, every embedded
// migration not yet recorded.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: name must start with a number", base)
		}
		if err := db.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			body, err := migrationFS.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, version, base, db.Now().UnixNano())
			return err
		}); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
	}
	return nil
}

// tx runs fn in a write transaction, committing if it returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return diskFull(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return diskFull(err)
	}
	return diskFull(tx.Commit())
}

// errDiskFull is a write refused because the database's filesystem is
// full: a 503 whose message says what to do, rather than a 500 "internal
// error". SQLite rolls the write back and its files stay consistent, so
// writes succeed again, in the same process, once space is freed
// (cmd/tokenward's TestDiskFull). The driver's error stays in the chain.
var errDiskFull = &tokenward.Error{Code: tokenward.EUNAVAILABLE, Message: "the database's disk is full: writes are refused until space is freed"}

// diskFull returns err with errDiskFull in front when it is SQLITE_FULL.
func diskFull(err error) error {
	if code, ok := sqliteCode(err); ok && code&0xff == sqlite3lib.SQLITE_FULL {
		return fmt.Errorf("%w (%w)", errDiskFull, err)
	}
	return err
}

// isConstraint reports whether err is a uniqueness or primary-key violation.
func isConstraint(err error) bool {
	code, _ := sqliteCode(err)
	return code == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isForeignKey(err error) bool {
	code, _ := sqliteCode(err)
	return code == sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY
}

// sqliteCode is the extended result code of the driver's error in err's
// chain. The nil check comes first: the variable errors.As fills escapes,
// and was allocated on every call, nil errors included (every audit
// insert).
func sqliteCode(err error) (int, bool) {
	if err == nil {
		return 0, false
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		return se.Code(), true
	}
	return 0, false
}

func notFound(format string, args ...any) error {
	return tokenward.Errorf(tokenward.ENOTFOUND, format, args...)
}
