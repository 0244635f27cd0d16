// Package pgtest runs a throwaway PostgreSQL cluster (initdb + pg_ctl) for
// tests that need a real server: the rotation tests and the PostgreSQL store.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running throwaway PostgreSQL cluster. Host authentication on
// 127.0.0.1 is scram-sha-256, so password tests mean something; the unix
// socket trusts local users.
type Cluster struct {
	// DSN is a superuser connection URL over loopback TCP.
	DSN string
	// Host and Port are the loopback TCP address the server listens on.
	Host string
	Port int
	// User and Password are the superuser's credentials.
	User     string
	Password string
	// SocketDir holds the server's unix socket.
	SocketDir string
	// LogFile is the server's log, for tests that check what it logged.
	LogFile string

	dir     string // removed on Stop
	dataDir string
	pgCtl   string
	asUser  string // run the binaries as this user ("" for the current one)
	stop    sync.Once
}

// URL returns a connection URL for user/password and database db on the
// cluster's TCP address.
func (c *Cluster) URL(user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable",
		urlEscape(user), urlEscape(password), net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), urlEscape(db))
}

func urlEscape(s string) string {
	// Only the characters our generated names and passwords can hold are
	// passed through; anything else is percent-encoded.
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// binaries finds initdb and pg_ctl on PATH or in the usual Debian location.
func binaries() (initdb, pgCtl string, err error) {
	initdb, err = exec.LookPath("initdb")
	if err == nil {
		pgCtl, err = exec.LookPath("pg_ctl")
		if err == nil {
			return initdb, pgCtl, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		dir := filepath.Dir(matches[len(matches)-1])
		return filepath.Join(dir, "initdb"), filepath.Join(dir, "pg_ctl"), nil
	}
	return "", "", fmt.Errorf("pgtest: initdb/pg_ctl not found on PATH: %w", err)
}

// skipOrFail skips the test normally, but fails it when CI=true: the CI must
// not pass by silently skipping every PostgreSQL test.
func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("PostgreSQL is required when CI=true: %v", err)
		return
	}
	tb.Skipf("PostgreSQL not available: %v", err)
}

// Start runs a new cluster for tb and stops and removes it in tb.Cleanup.
// It skips tb when the PostgreSQL binaries are missing, and fails it instead
// when CI=true.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := start()
	if err != nil {
		if isMissing(err) {
			skipOrFail(tb, err)
		}
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() { c.Stop() })
	return c
}

type missingError struct{ error }

func isMissing(err error) bool { _, ok := err.(missingError); return ok }

var shared struct {
	sync.Mutex
	c   *Cluster
	err error
}

// Shared returns one cluster for the whole test binary, started on first
// use. Call Main from TestMain, which stops and removes it when the tests
// end; a package that uses Shared without Main leaks the cluster.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = start()
	}
	if shared.err != nil {
		if isMissing(shared.err) {
			skipOrFail(tb, shared.err)
		}
		tb.Fatalf("pgtest: %v", shared.err)
	}
	return shared.c
}

// Main runs the tests and then stops the shared cluster, if one was
// started. Use it as: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	shared.Lock()
	if shared.c != nil {
		shared.c.Stop()
	}
	shared.Unlock()
	return code
}

func start() (*Cluster, error) {
	initdb, pgCtl, err := binaries()
	if err != nil {
		return nil, missingError{err}
	}
	c := &Cluster{Host: "127.0.0.1", User: "postgres", pgCtl: pgCtl}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		c.asUser = "postgres"
		if _, err := user.Lookup(c.asUser); err != nil {
			return nil, missingError{fmt.Errorf("running as root and no %q user: %w", c.asUser, err)}
		}
	}
	sweepOrphans(os.TempDir(), pgCtl, c.asUser)
	c.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	// The postgres user must reach its data and socket dirs under our temp dir.
	if err := os.Chmod(c.dir, 0o755); err != nil { // #nosec G302 -- test helper: as root the postgres user must traverse the throwaway cluster's directory
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.dir, ownerFile), []byte(ownerLine()), 0o600); err != nil {
		return nil, err
	}
	c.dataDir = filepath.Join(c.dir, "data")
	c.SocketDir = filepath.Join(c.dir, "sock")
	for _, d := range []string{c.dataDir, c.SocketDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	c.Password = rand.Text()
	pwFile := filepath.Join(c.dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(c.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if c.asUser != "" {
		u, _ := user.Lookup(c.asUser)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{c.dataDir, c.SocketDir, pwFile} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, err
			}
		}
	}
	if out, err := c.run(initdb, "-D", c.dataDir, "-U", c.User, "--pwfile", pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--locale=C"); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	os.Remove(pwFile)

	c.Port, err = freePort()
	if err != nil {
		return nil, err
	}
	// Settings go into postgresql.conf rather than pg_ctl -o, which passes
	// through a shell. Durability is off: the cluster is thrown away.
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 50\n"+
		"password_encryption = 'scram-sha-256'\n", c.Port, c.SocketDir)
	f, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	logFile := filepath.Join(c.dir, "server.log")
	c.LogFile = logFile
	if c.asUser != "" {
		// pg_ctl writes the log as the postgres user.
		if f, err := os.Create(logFile); err == nil {
			f.Close()
			u, _ := user.Lookup(c.asUser)
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			os.Chown(logFile, uid, gid)
		}
	}
	if out, err := c.run(pgCtl, "-D", c.dataDir, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		return nil, fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log)
	}
	c.DSN = c.URL(c.User, c.Password, "postgres")
	ok = true
	return c, nil
}

// Stop stops the server and removes its files. It is safe to call twice.
func (c *Cluster) Stop() {
	c.stop.Do(func() {
		if c.dataDir != "" {
			if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); err == nil {
				c.run(c.pgCtl, "-D", c.dataDir, "-m", "immediate", "-w", "-t", "30", "stop")
			}
		}
		if c.dir != "" {
			os.RemoveAll(c.dir)
		}
	})
}

// StopServer stops the server the way an operator restarting it would
// (pg_ctl stop -m fast: sessions are ended, then it shuts down cleanly),
// keeping its files; StartServer starts it again on the same port. For
// tests of what clients do while the database is down.
func (c *Cluster) StopServer() error {
	if out, err := c.run(c.pgCtl, "-D", c.dataDir, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// StartServer starts a server StopServer stopped, on the same port, and
// returns when it accepts connections.
func (c *Cluster) StartServer() error {
	if out, err := c.run(c.pgCtl, "-D", c.dataDir, "-l", c.LogFile, "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	return nil
}

// Restart stops and starts the server (StopServer, StartServer).
func (c *Cluster) Restart() error {
	if err := c.StopServer(); err != nil {
		return err
	}
	return c.StartServer()
}

// run runs a PostgreSQL binary, as the postgres user when we are root. The
// argv never holds a password (initdb reads it from a file).
func (c *Cluster) run(bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.asUser, "--", bin}, args...)...) // #nosec G204 -- test helper: runs initdb/pg_ctl found on PATH
	} else {
		cmd = exec.CommandContext(ctx, bin, args...) // #nosec G204 -- test helper: runs initdb/pg_ctl found on PATH
	}
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C"}
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// NewDatabase creates an empty database on c, owned by the superuser, and
// returns its connection URL; it is dropped when the test ends. Each test
// of a store gets its own, so tests never see each other's rows.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := "tw_" + strings.ToLower(rand.Text()[:16])
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		admin, err := pgx.Connect(ctx, c.DSN)
		if err != nil {
			tb.Errorf("pgtest: connect: %v", err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database: %v", err)
		}
	})
	return c.URL(c.User, c.Password, name)
}
