package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/sqlite"
	"github.com/tokenward/tokenward/internal/storetest"
)

func TestAuditCIConformance(t *testing.T) {
	t.Run("DB", func(t *testing.T) {
		storetest.RunAuditCI(t, storetest.AuditCIBackend{
			Open: func(t *testing.T) (storetest.AuditStore, storetest.AuditSQL) {
				db := MustOpenDB(t)
				return db, mustRawSQL(t, db.Path)
			},
			Again: func(t *testing.T, s storetest.AuditStore) storetest.AuditStore {
				db := sqlite.NewDB(s.(*sqlite.DB).Path)
				if err := db.Open(); err != nil {
					t.Fatal(err)
				}
				return db
			},
		})
	})
	// The server's audit store: its own commit path (audit_sync.go).
	for _, mode := range []sqlite.AuditSync{sqlite.AuditSyncNormal, sqlite.AuditSyncFull} {
		open := func(t *testing.T, path string) storetest.AuditStore {
			db := sqlite.NewDB(path)
			if err := db.Open(); err != nil {
				t.Fatal(err)
			}
			s := sqlite.NewAuditStore(db, mode)
			s.SyncEvery = time.Millisecond
			if err := s.Open(); err != nil {
				t.Fatal(err)
			}
			return auditStoreCloser{s}
		}
		t.Run("AuditStore/"+mode.String(), func(t *testing.T) {
			storetest.RunAuditCI(t, storetest.AuditCIBackend{
				Open: func(t *testing.T) (storetest.AuditStore, storetest.AuditSQL) {
					path := filepath.Join(t.TempDir(), "tokenward.db")
					return open(t, path), mustRawSQL(t, path)
				},
				Again: func(t *testing.T, s storetest.AuditStore) storetest.AuditStore {
					return open(t, s.(auditStoreCloser).Path)
				},
			})
		})
	}
}

// mustRawSQL is SQL on the database file at path, beside the store's own
// connections.
func mustRawSQL(t *testing.T, path string) storetest.AuditSQL {
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return storetest.AuditSQL{
		Exec: func(t *testing.T, q string) {
			t.Helper()
			if _, err := raw.Exec(q); err != nil {
				t.Fatal(err)
			}
		},
		Int: func(t *testing.T, q string) int64 {
			t.Helper()
			var n int64
			if err := raw.QueryRow(q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		},
	}
}
