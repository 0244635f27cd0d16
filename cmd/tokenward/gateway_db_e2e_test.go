//go:build !tokenward_client

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// TestGatewayDB drives the real binary: a route made with `gateway db
// create`, psql signing in through --gateway-db-listen with a token, the
// session audited with its bytes, a revoked token and a deleted route
// refused, and neither the database password nor the token in the
// server's log or data directory.
func TestGatewayDB(t *testing.T) {
	psql := lookPsql(t)
	pg := pgtest.Shared(t)
	super, dbName, role, password := newGatewayRole(t, pg)

	e := newRotEnv(t)
	gwPort := freePort(t)
	e.args = []string{"--gateway-db-listen", fmt.Sprintf("127.0.0.1:%d", gwPort)}
	t.Cleanup(e.stop)
	e.start()
	e.mustCLI("", "project", "create", "acme", "--envs", "prod")
	e.mustCLI(fmt.Sprintf("postgres://%s:%s@db.invalid/%s", role, password, dbName), "secret", "set", "acme/prod/DATABASE_URL")
	upstream := fmt.Sprintf("%s:%d", pg.Host, pg.Port)
	e.mustCLI("", "gateway", "db", "create", "pgprod", "--upstream", upstream, "--secret", "acme/prod/DATABASE_URL")
	if out := e.mustCLI("", "gateway", "db", "list"); !strings.Contains(out, "pgprod") || !strings.Contains(out, upstream) || !strings.Contains(out, "acme/prod/DATABASE_URL") {
		t.Fatalf("gateway db list: got %q; want the route", out)
	}
	var shown []tokenward.DBRoute
	if err := json.Unmarshal([]byte(e.mustCLI("", "gateway", "db", "show", "pgprod", "-o", "json")), &shown); err != nil || len(shown) != 1 || shown[0].Upstream != upstream || shown[0].SecretPath() != "acme/prod/DATABASE_URL" {
		t.Fatalf("gateway db show: got %+v, %v; want the route", shown, err)
	}
	if _, errs, err := e.cli("", "gateway", "db", "create", "Bad_Name", "--upstream", upstream, "--secret", "acme/prod/DATABASE_URL"); err == nil || !strings.Contains(errs, "route name") {
		t.Fatalf("a bad name: got %v, %q; want a usage error", err, errs)
	}
	token := strings.TrimSpace(e.mustCLI("", "token", "create", "--name", "ci-job", "--grant", "gateway:pgprod"))

	run := func(tok string) (string, error) {
		cmd := exec.Command(psql, "-X", "-A", "-t", "-w", fmt.Sprintf("host=127.0.0.1 port=%d user=pgprod dbname=x sslmode=prefer", gwPort), "-c", "SELECT current_user")
		cmd.Env = []string{"PGPASSWORD=" + tok, "PATH=/usr/bin:/bin", "HOME=" + e.dir}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run(token); err != nil || out != role {
		t.Fatalf("psql through the gateway: got %q, %v; want %s\nserver log:\n%s", out, err, role, e.logs)
	}

	// The session's end is recorded once the server sees psql's
	// connection close, which may be just after psql exits.
	var entries []tokenward.AuditEntry
	var session *tokenward.AuditEntry
	for deadline := time.Now().Add(20 * time.Second); session == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		entries = nil
		if err := json.Unmarshal([]byte(e.mustCLI("", "audit", "search", "--action", "gateway.db.*", "-o", "json")), &entries); err != nil {
			t.Fatal(err)
		}
		for i := range entries {
			if entries[i].Action == "gateway.db.session" {
				session = &entries[i]
			}
		}
	}
	if session == nil || session.TokenName != "ci-job" || session.Resource != "gateway:pgprod" {
		t.Fatalf("got entries %+v; want a gateway.db.session of ci-job on gateway:pgprod", entries)
	}
	if n, _ := strconv.Atoi(session.Meta["bytes_out"]); n <= 0 {
		t.Fatalf("got meta %v; want bytes out", session.Meta)
	}

	// A session open when its token is revoked ends within a second or
	// so (the server checks its sessions' tokens every second), its query
	// cancelled.
	long := exec.Command(psql, "-X", "-A", "-t", "-w", fmt.Sprintf("host=127.0.0.1 port=%d user=pgprod dbname=x sslmode=disable", gwPort), "-c", "SELECT pg_sleep(60)")
	long.Env = []string{"PGPASSWORD=" + token, "PATH=/usr/bin:/bin", "HOME=" + e.dir}
	var longOut syncBuf
	long.Stdout, long.Stderr = &longOut, &longOut
	if err := long.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { long.Process.Kill() })
	longDone := make(chan error, 1)
	go func() { longDone <- long.Wait() }()
	if _, ok := within(20*time.Second, func() bool { return sessionsOf(t, super, role, "pg_sleep") == 1 }); !ok {
		t.Fatalf("psql's long session never started: %s", longOut.String())
	}
	e.mustCLI("", "token", "revoke", "ci-job")
	select {
	case err := <-longDone:
		if err == nil {
			t.Fatalf("psql's session outlived its token's revocation: %s", longOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("psql's session still open 10 s after its token was revoked\nserver log:\n%s", e.logs)
	}
	if _, ok := within(10*time.Second, func() bool { return sessionsOf(t, super, role, "") == 0 }); !ok {
		t.Fatal("the upstream still runs the revoked token's session")
	}
	if out, err := run(token); err == nil || !strings.Contains(out, "is revoked") {
		t.Fatalf("a revoked token: got %q, %v; want refused as revoked", out, err)
	}
	other := strings.TrimSpace(e.mustCLI("", "token", "create", "--name", "ci-job-2", "--grant", "gateway:pgprod"))
	e.mustCLI("", "gateway", "db", "delete", "pgprod")
	if out, err := run(other); err == nil || !strings.Contains(out, "route pgprod not found") {
		t.Fatalf("a deleted route: got %q, %v; want refused", out, err)
	}
	e.noLeak(password, token, other)
}

// lookPsql is psql's path: the client a user would use. In CI a missing
// psql fails the test rather than skipping it.
func lookPsql(t *testing.T) string {
	t.Helper()
	psql, err := exec.LookPath("psql")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("psql not installed (CI)")
		}
		t.Skip("psql not installed")
	}
	return psql
}

// newGatewayRole makes a database and a login role on it for a route to
// sign in as: the database's superuser URL, its name, the role and its
// password.
func newGatewayRole(t *testing.T, pg *pgtest.Cluster) (super, dbName, role, password string) {
	t.Helper()
	super = pg.NewDatabase(t)
	dbName = super[strings.LastIndexByte(super, '/')+1 : strings.IndexByte(super, '?')]
	role, password = "gwe2e_"+strings.ToLower(rand.Text()[:10]), "pw-"+rand.Text()
	conn, err := pgx.Connect(t.Context(), super)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, password)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), pg.DSN); err == nil {
			c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
			c.Close(context.Background())
		}
	})
	return super, dbName, role, password
}

// TestGatewayDBCancelThroughPeer drives two real servers on one
// PostgreSQL store behind a round-robin TCP balancer, peers 1 and 2: psql's
// session lands on server 1, and the cancel request its Ctrl-C sends (on a
// connection of its own) on server 2, which passes it on to server 1. The
// query is cancelled, as it would be without the balancer.
func TestGatewayDBCancelThroughPeer(t *testing.T) {
	psql := lookPsql(t)
	pg := pgtest.Shared(t)
	super, dbName, role, password := newGatewayRole(t, pg)
	c := newScaleCluster(t, pg, 2)
	gw := []string{fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	for i, e := range c.servers {
		other := 1 - i
		e.args = append(e.args, "--gateway-db-listen", gw[i], "--gateway-db-peer-id", strconv.Itoa(i+1),
			"--gateway-db-peer", fmt.Sprintf("%d=%s", other+1, gw[other]))
		e.start()
	}
	a := c.servers[0]
	a.mustCLI("", "project", "create", "acme", "--envs", "prod")
	a.mustCLI(fmt.Sprintf("postgres://%s:%s@db.invalid/%s", role, password, dbName), "secret", "set", "acme/prod/DATABASE_URL")
	a.mustCLI("", "gateway", "db", "create", "pgprod", "--upstream", fmt.Sprintf("%s:%d", pg.Host, pg.Port), "--secret", "acme/prod/DATABASE_URL")
	token := strings.TrimSpace(a.mustCLI("", "token", "create", "--name", "ci-job", "--grant", "gateway:pgprod"))

	lb := newRoundRobin(t, gw)
	cmd := exec.Command(psql, "-X", "-A", "-t", "-w", fmt.Sprintf("host=127.0.0.1 port=%d user=pgprod dbname=x sslmode=disable", lb.port), "-c", "SELECT pg_sleep(60)")
	cmd.Env = []string{"PGPASSWORD=" + token, "PATH=/usr/bin:/bin", "HOME=" + a.dir}
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	conn, err := pgx.Connect(t.Context(), super)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, ok := within(20*time.Second, func() bool {
		var n int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active' AND query LIKE '%pg_sleep%'`, role).Scan(&n)
		return err == nil && n == 1
	}); !ok {
		t.Fatalf("the upstream never ran psql's query; psql: %s\n%s", out.String(), c.logs())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil { // Ctrl-C: psql sends a cancel request
		t.Fatal(err)
	}
	select {
	case err = <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("psql still waits 20 s after Ctrl-C; psql: %s\n%s", out.String(), c.logs())
	}
	if err == nil || !strings.Contains(out.String(), "canceling statement due to user request") {
		t.Fatalf("psql: %v %s; want the query cancelled\n%s", err, out.String(), c.logs())
	}
	if got := lb.sent(); len(got) != 2 || got[0] != gw[0] || got[1] != gw[1] {
		t.Fatalf("the balancer sent connections to %v; want the session to server 1 and the cancel request to server 2", got)
	}
}

// roundRobin is a TCP load balancer on loopback: the n-th connection goes
// to backends[n % len(backends)].
type roundRobin struct {
	port int
	mu   sync.Mutex
	to   []string // where each connection went
}

func newRoundRobin(t *testing.T, backends []string) *roundRobin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lb := &roundRobin{port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			lb.mu.Lock()
			addr := backends[len(lb.to)%len(backends)]
			lb.to = append(lb.to, addr)
			lb.mu.Unlock()
			go func() {
				defer client.Close()
				backend, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer backend.Close()
				go func() { io.Copy(backend, client); backend.Close() }()
				io.Copy(client, backend)
			}()
		}
	}()
	return lb
}

func (lb *roundRobin) sent() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return slices.Clone(lb.to)
}

// sessionsOf counts role's sessions on the database at super, those
// whose query holds running when it is not empty.
func sessionsOf(t *testing.T, super, role, running string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), super)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND ($2 = '' OR (state = 'active' AND strpos(query, $2) > 0))`, role, running).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGatewayDBFailedSignInsShareTheAPILimit: token guesses through the
// database gateway spend their address's budget of failed
// authentications, which the API shares (one budget for both doors):
// after the default burst of 20 the gateway refuses the address with
// 53300, and the API refuses it too, even with a valid token, until the
// budget refills.
func TestGatewayDBFailedSignInsShareTheAPILimit(t *testing.T) {
	e := newRotEnv(t)
	gwPort := freePort(t)
	e.args = []string{"--gateway-db-listen", fmt.Sprintf("127.0.0.1:%d", gwPort)}
	t.Cleanup(e.stop)
	e.start()
	guess, err := tokenward.NewTokenSecret(tokenward.TokenService) // well formed, and nobody's
	if err != nil {
		t.Fatal(err)
	}
	signIn := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		conn, err := pgconn.Connect(ctx, fmt.Sprintf("postgres://pgprod:%s@127.0.0.1:%d/x?sslmode=disable", guess, gwPort))
		if err == nil {
			conn.Close(context.Background())
		}
		return err
	}
	for i := range 20 {
		if err := signIn(); err == nil || !strings.Contains(err.Error(), "unknown token") {
			t.Fatalf("guess %d: got %v; want unknown token", i+1, err)
		}
	}
	var pe *pgconn.PgError
	if err := signIn(); !errors.As(err, &pe) || pe.Code != "53300" || !strings.Contains(pe.Message, "too many failed authentications") {
		t.Fatalf("guess 21: got %v; want 53300, too many failed authentications", err)
	}
	if _, errs, err := e.cli("", "project", "list"); err == nil || !strings.Contains(errs, "too many failed authentications") {
		t.Fatalf("the API from the same address: got %v %s; want refused", err, errs)
	}
	e.noLeak(guess)
}
