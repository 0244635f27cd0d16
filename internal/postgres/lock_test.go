package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
)

// Keys of advisory locks on one bigint: the server lock ("twserve") and
// the leader lock ("twlead").
const (
	serverLockKey int64 = 0x74777365727665
	leaderLockKey int64 = 0x74776c656164
)

// lockHolderQuery is the pid of a session holding the advisory lock on
// the bigint $1, 0 for none: pg_locks shows its high 32 bits as classid,
// its low ones as objid, and objsubid 1.
const lockHolderQuery = `SELECT coalesce(min(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1`

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// lockedDB opens url, takes the server lock with checks every 20 ms, and
// returns its release (also called when the test ends), its log and the
// channel lost reports on.
func lockedDB(t *testing.T, url string) (func(), *logBuf, <-chan error) {
	t.Helper()
	db := mustOpenURL(t, url)
	db.LockCheckInterval = 20 * time.Millisecond
	logs := &logBuf{}
	db.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lost := make(chan error, 1)
	release, err := db.LockServer(t.Context(), func(err error) { lost <- err })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return release, logs, lost
}

// holder is the pid of a session that holds the server lock, 0 for none.
func holder(t *testing.T, conn *pgx.Conn) uint32 {
	t.Helper()
	return lockHolderPID(t, conn, serverLockKey)
}

func lockHolderPID(t *testing.T, conn *pgx.Conn, key int64) uint32 {
	t.Helper()
	var pid int64
	if err := conn.QueryRow(context.Background(), lockHolderQuery, key).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return uint32(pid)
}

// wantKept checks the lock was never reported lost and the log says each
// of wants.
func wantKept(t *testing.T, logs *logBuf, lost <-chan error, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log: got %q; want %q", logs, want)
		}
	}
	select {
	case err := <-lost:
		t.Fatalf("lost: got %v; want the lock kept", err)
	default:
	}
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up", what)
		}
	}
}

// TestLockServerTakenAgain: when the session holding the server lock ends
// (the database restarted it, or an administrator), the lock is logged as
// lost and taken again on a new connection; a second server takes it
// beside the first, and a migration is still refused; after both release
// it is not.
func TestLockServerTakenAgain(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	release, logs, lost := lockedDB(t, url)
	admin := mustConn(t, url)
	old := holder(t, admin)
	if old == 0 {
		t.Fatal("no session holds the server lock after LockServer")
	}
	if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, int64(old)); err != nil {
		t.Fatal(err)
	}
	// The log line follows the lock: wait for both.
	waitFor(t, "the lock taken again", func() bool {
		p := holder(t, admin)
		return p != 0 && p != old && strings.Contains(logs.String(), "server lock taken again")
	})
	wantKept(t, logs, lost, "database unreachable: the connection holding the server lock failed", "server lock taken again")
	second := mustOpenURL(t, url)
	releaseSecond, err := second.LockServer(t.Context(), nil)
	if err != nil {
		t.Fatalf("second server: got %v; want the lock shared", err)
	}
	migration := mustOpenURL(t, url)
	if _, err := migration.LockMigration(t.Context(), nil); !errors.Is(err, postgres.ErrServerRunning) {
		t.Fatalf("migration beside two servers: got %v; want ErrServerRunning", err)
	}
	release()
	if _, err := migration.LockMigration(t.Context(), nil); !errors.Is(err, postgres.ErrServerRunning) {
		t.Fatalf("migration beside the second server: got %v; want ErrServerRunning", err)
	}
	releaseSecond()
	releaseMigration, err := migration.LockMigration(t.Context(), nil)
	if err != nil {
		t.Fatalf("migration after both servers released: got %v; want the lock", err)
	}
	releaseMigration()
}

// TestLockModes: servers share the lock; a migration takes it alone.
func TestLockModes(t *testing.T) {
	server := func(db *postgres.DB) (func(), error) { return db.LockServer(t.Context(), nil) }
	migration := func(db *postgres.DB) (func(), error) { return db.LockMigration(t.Context(), nil) }
	type locker func(*postgres.DB) (func(), error)
	tests := []struct {
		name         string
		first, again locker
		want         error
	}{
		{"server beside server", server, server, nil},
		{"migration beside server", server, migration, postgres.ErrServerRunning},
		{"server beside migration", migration, server, postgres.ErrMigrating},
		{"migration beside migration", migration, migration, postgres.ErrMigrating},
	}
	url := pgtest.Shared(t).NewDatabase(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release, err := tc.first(mustOpenURL(t, url))
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			releaseAgain, err := tc.again(mustOpenURL(t, url))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
			if err == nil {
				releaseAgain()
			}
		})
	}
}

// TestLockServerLostToMigration: when a migration takes the lock while
// this server's connection is down, lost is called with ErrMigrating.
func TestLockServerLostToMigration(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	_, logs, lost := lockedDB(t, url)
	admin := mustConn(t, url)
	old := holder(t, admin)
	other := mustConn(t, url)
	otherPID := other.PgConn().PID()
	took := make(chan error, 1)
	go func() {
		_, err := other.Exec(context.Background(), `SELECT pg_advisory_lock(x'74777365727665'::bigint)`)
		took <- err
	}()
	// Only once the other session waits in the lock's queue is the
	// holder ended, so the lock goes to it, never back to this server.
	waitFor(t, "the other session to wait for the lock", func() bool {
		var n int
		admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $1`, int64(otherPID)).Scan(&n)
		return n == 1
	})
	if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, int64(old)); err != nil {
		t.Fatal(err)
	}
	if err := <-took; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if !errors.Is(err, postgres.ErrMigrating) {
			t.Fatalf("lost: got %v; want ErrMigrating", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("lost was not called\n%s", logs)
	}
	if !strings.Contains(logs.String(), "tokenward migrate took this database") {
		t.Errorf("log: got %q; want the migration named", logs)
	}
	if got := holder(t, admin); got != otherPID {
		t.Errorf("holder: got pid %d; want the other session's %d", got, otherPID)
	}
}

// TestLockServerOwnOldSession: when the connection breaks but the
// database keeps the old session (and with it the lock) alive, that
// session is this server's own: it is ended and the lock taken again,
// and lost is not called.
func TestLockServerOwnOldSession(t *testing.T) {
	c := pgtest.Shared(t)
	url := c.NewDatabase(t)
	p := startCutProxy(t, net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	viaProxy := strings.Replace(url, ":"+strconv.Itoa(c.Port)+"/", ":"+strconv.Itoa(p.port())+"/", 1)
	if viaProxy == url {
		t.Fatalf("URL %q does not name port %d", url, c.Port)
	}
	_, logs, lost := lockedDB(t, viaProxy)
	admin := mustConn(t, url)
	old := holder(t, admin)
	p.cut() // the client side goes; the database's sessions stay
	waitFor(t, "the lock taken again", func() bool {
		pid := holder(t, admin)
		return pid != 0 && pid != old && strings.Contains(logs.String(), "server lock taken again")
	})
	wantKept(t, logs, lost, "database unreachable", "ended this server's old database session", "server lock taken again")
}

// cutProxy forwards loopback TCP connections to a target; cut closes the
// client side of every connection so far and leaves the target side open,
// as a network that broke without the server noticing.
type cutProxy struct {
	ln       net.Listener
	mu       sync.Mutex
	clients  []net.Conn
	upstream []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.clients, p.upstream = append(p.clients, c), append(p.upstream, u)
			p.mu.Unlock()
			go io.Copy(u, c)
			go io.Copy(c, u)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range append(p.clients, p.upstream...) {
			c.Close()
		}
	})
	return p
}

func (p *cutProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.Close()
	}
	p.clients = nil
}
