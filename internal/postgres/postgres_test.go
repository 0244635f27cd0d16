package postgres_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// MustOpenDB opens a fresh, migrated database on the shared test cluster;
// it is closed and dropped when the test ends.
func MustOpenDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	return mustOpenURL(tb, pgtest.Shared(tb).NewDatabase(tb))
}

func mustOpenURL(tb testing.TB, url string) *postgres.DB {
	tb.Helper()
	db := postgres.NewDB(url)
	db.MaxConns = 4
	if err := db.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestMigrateConcurrently: servers that start together on an empty
// database all come up; the migrations ran once.
func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db := postgres.NewDB(url)
			db.MaxConns = 2
			errs[i] = db.Open(context.Background())
			db.Close()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent open: got %v; want every server up", err)
	}
	conn := mustConn(t, url)
	var n, distinct int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != distinct {
		t.Errorf("schema_migrations: got %d rows, %d distinct; want each migration once", n, distinct)
	}
}

// TestRefuseNewerDatabase: a database migrated by a newer tokenward is
// refused with a message that says so, before anything is written.
func TestRefuseNewerDatabase(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	mustOpenURL(t, url)
	conn := mustConn(t, url)
	if _, err := conn.Exec(context.Background(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_from_the_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	err := postgres.NewDB(url).Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "9999_from_the_future.sql") || !strings.Contains(err.Error(), "newer tokenward") {
		t.Fatalf("open: got %v; want a refusal naming the unknown migration and a newer tokenward", err)
	}
}

// TestOpenErrorsHideThePassword: a URL that does not connect, or does not
// parse, gives an error without its password.
func TestOpenErrorsHideThePassword(t *testing.T) {
	c := pgtest.Shared(t)
	for _, url := range []string{
		c.URL(c.User, "wrong-PASSWORD-canary", "postgres"),
		"postgres://u:PASSWORD-canary@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"postgres://u:PASSWORD-canary@[::1/db",
	} {
		err := postgres.NewDB(url).Open(context.Background())
		if err == nil {
			t.Fatalf("open %q: got nil; want an error", url)
		}
		if strings.Contains(err.Error(), "canary") {
			t.Errorf("open: got %q; want no password in the error", err)
		}
	}
}

func mustConn(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
