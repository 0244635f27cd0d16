package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlite"
	"github.com/tokenward/tokenward/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokenward.Store {
		return MustOpenDB(t)
	})
}

func TestOIDCConformance(t *testing.T) {
	storetest.RunOIDC(t, func(t *testing.T) storetest.OIDCStore { return MustOpenDB(t) })
}

func TestMonitorConformance(t *testing.T) {
	storetest.RunMonitor(t, func(t *testing.T) storetest.MonitorStore { return MustOpenDB(t) })
}

func TestGatewayConformance(t *testing.T) {
	storetest.RunGatewayRoutes(t, func(t *testing.T) storetest.GatewayStore { return MustOpenDB(t) })
}

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) storetest.AuditStore { return MustOpenDB(t) })
}

// MustOpenDB opens a fresh database in a temporary directory.
func MustOpenDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db := sqlite.NewDB(filepath.Join(tb.TempDir(), "tokenward.db"))
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	return db
}

func TestReopenKeepsDataAndSkipsMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenward.db")
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.InitKeyring(t.Context(), []byte("ring")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if got, err := db.Keyring(t.Context()); err != nil || string(got) != "ring" {
		t.Fatalf("got %q, %v; want ring", got, err)
	}
}

// TestPing: an open database answers; a closed one does not.
func TestPing(t *testing.T) {
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "tokenward.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on an open database: got %v; want nil", err)
	}
	db.Close()
	if err := db.Ping(t.Context()); err == nil {
		t.Fatal("Ping on a closed database: got nil; want an error")
	}
}

func TestLeaseConformance(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) storetest.LeasingStore { return MustOpenDB(t) })
}

func TestConsoleSessions(t *testing.T) {
	storetest.RunConsoleSessions(t, func(t *testing.T) storetest.ConsoleStore { return MustOpenDB(t) })
}
