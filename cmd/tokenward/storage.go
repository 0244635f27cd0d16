//go:build !tokenward_client

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// storage is every store the server uses, from one backend: SQLite in the
// data directory (the default) or PostgreSQL (--storage postgres://…).
// storageConfig.open is the one list of backends.
type storage interface {
	tokenward.Store
	tokenward.ConsoleSessionStore
	core.BindingStore
	tokenward.DBRouteStore
	core.MonitorStore
	core.SecretCatalog
	tokenward.LeaseStore
	tokenward.GatewayRouteStore
	audit.Source
	audit.Searcher
	Rotations() rotate.Store
	BulkJobs() rotate.BulkJobStore
	Close() error
}

// auditStore is the audit trail's store on a backend, opened and closed
// by the audit feature.
type auditStore interface {
	audit.Store
	Open() error
	Close() error
}

// storageConfig selects the backend: a PostgreSQL URL, or "" for SQLite.
type storageConfig struct {
	URL      string
	MaxConns int
}

func (c *storageConfig) register(m *Main, flags interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
}) {
	// The flag's shown default is empty: TOKENWARD_STORAGE may hold a
	// password, and --help prints a flag's default. The variable is the
	// value unless --storage is given.
	flags.StringVar(&c.URL, "storage", "",
		"postgres://user:password@host:5432/db?sslmode=verify-full&sslrootcert=ca.pem (default: SQLite in the data directory; env TOKENWARD_STORAGE). Prefer TOKENWARD_STORAGE or a ~/.pgpass for the password")
	c.URL = m.Getenv("TOKENWARD_STORAGE")
	flags.IntVar(&c.MaxConns, "storage-max-conns", 0, "PostgreSQL connection pool size (default: max(4, CPUs))")
}

func (c *storageConfig) validate() error {
	switch {
	case c.URL == "", c.isPostgres():
	default:
		return usageError("--storage: want a postgres:// or postgresql:// URL, or nothing for SQLite in --data-dir")
	}
	if c.MaxConns < 0 || c.MaxConns > 1000 {
		return usageError("--storage-max-conns must be from 1 to 1000")
	}
	return nil
}

func (c *storageConfig) isPostgres() bool {
	return strings.HasPrefix(c.URL, "postgres://") || strings.HasPrefix(c.URL, "postgresql://")
}

// open opens the configured backend; create allows a new SQLite
// file (init), else the data directory must hold one.
func (c *storageConfig) open(ctx context.Context, dataDir string, create bool) (storage, error) {
	if c.isPostgres() {
		db := postgres.NewDB(c.URL)
		db.MaxConns = int32(c.MaxConns) // #nosec G115 -- validate() bounds MaxConns to 0..1000
		if err := db.Open(ctx); err != nil {
			return nil, err
		}
		return pgStorage{db}, nil
	}
	path := filepath.Join(dataDir, dbFileName)
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no store at %s (run `tokenward init --data-dir %s` first)", path, dataDir)
		}
	}
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		return nil, err
	}
	return sqliteStorage{db}, nil
}

// sqliteStorage adds what the server needs of SQLite beyond its stores.
type sqliteStorage struct{ *sqlite.DB }

// pgStorage adds what the server needs of PostgreSQL beyond its stores.
type pgStorage struct{ *postgres.DB }

// electorOf is how the servers on s pick their leader: PostgreSQL's
// leader lock, or, on SQLite (one server per data directory), this server.
func electorOf(s storage) elector {
	if pg, ok := s.(pgStorage); ok {
		return pg.DB
	}
	return soleServer{}
}

// auditStore returns the audit trail's store for --audit-sync sync.
func auditStoreOf(s storage, sync string, syncEvery time.Duration, log *slog.Logger) auditStore {
	switch s := s.(type) {
	case sqliteStorage:
		mode := sqlite.AuditSyncNormal
		if sync == "full" {
			mode = sqlite.AuditSyncFull
		}
		store := sqlite.NewAuditStore(s.DB, mode)
		store.SyncEvery = syncEvery
		store.Logger = log
		return store
	case pgStorage:
		// A committed PostgreSQL transaction is durable: normal and full
		// are the same there.
		return pgAuditStore(s)
	}
	panic(fmt.Sprintf("no audit store for %T", s))
}

type pgAuditStore struct{ *postgres.DB }

func (pgAuditStore) Open() error  { return nil }
func (pgAuditStore) Close() error { return nil } // the server closes the DB

func (s sqliteStorage) Rotations() rotate.Store { return s.DB.Rotations() }
func (s pgStorage) Rotations() rotate.Store     { return s.DB.Rotations() }

func (s sqliteStorage) BulkJobs() rotate.BulkJobStore { return s.DB.Rotations() }
func (s pgStorage) BulkJobs() rotate.BulkJobStore     { return s.DB.Rotations() }
