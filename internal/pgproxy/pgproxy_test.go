package pgproxy_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/pgproxy"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if upstreamTLS.dir != "" {
		os.RemoveAll(upstreamTLS.dir)
	}
	os.Exit(code)
}

// fixture is a real engine on SQLite with a route pgprod to a real
// PostgreSQL database, signed in there as a role of its own, and a proxy
// on loopback in front of it.
type fixture struct {
	cluster  *pgtest.Cluster
	superURL string // the database, as the superuser (direct)
	role     string
	password string // the role's current password: must never reach a client
	dbName   string
	core     *core.Core
	admin    *tokenward.Token
	proxy    *pgproxy.Proxy
	addr     string
	stop     func() // stops the proxy and waits for every session's end

	logs    syncBuf      // the proxy's log, at debug level
	skew    atomic.Int64 // the core's clock runs this far ahead of time.Now
	mu      sync.Mutex
	entries []*tokenward.AuditEntry
	auditFn func(*tokenward.AuditEntry) error
}

func newFixture(t testing.TB, configure ...func(*pgproxy.Proxy)) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{cluster: pgtest.Shared(t)}
	enableUpstreamTLS(t, f.cluster)
	f.superURL = f.cluster.NewDatabase(t)
	f.dbName = f.superURL[strings.LastIndexByte(f.superURL, '/')+1 : strings.IndexByte(f.superURL, '?')]
	f.role = "gw_" + strings.ToLower(rand.Text()[:12])
	f.password = "pw-" + rand.Text()
	f.super(t, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", f.role, f.password))
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), f.cluster.DSN)
		if err == nil {
			conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+f.role)
			conn.Close(context.Background())
		}
	})

	db := sqlite.NewDB(t.TempDir() + "/tokenward.db")
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key := seal.NewKey()
	secret, err := core.Init(ctx, db, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f.core, err = core.New(ctx, db, key); err != nil {
		t.Fatal(err)
	}
	f.core.Now = func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }
	f.core.DBGateway = &core.DBGateway{Store: db}
	if f.admin, err = f.core.Authenticate(ctx, secret, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.CreateProject(ctx, f.admin, "acme", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	f.putURL(t, f.password, "")
	upstream := net.JoinHostPort(f.cluster.Host, strconv.Itoa(f.cluster.Port))
	if _, err := f.core.CreateDBRoute(ctx, f.admin, &tokenward.DBRoute{Name: "pgprod", Upstream: upstream, Project: "acme", Env: "prod", Secret: "DATABASE_URL"}); err != nil {
		t.Fatal(err)
	}

	f.proxy = &pgproxy.Proxy{Opener: f.core, Audit: f.audit, Logger: slog.New(slog.NewTextHandler(&f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, c := range configure {
		c(f.proxy)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(t, ln)
	return f
}

func (f *fixture) serve(t testing.TB, ln net.Listener) {
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.proxy.Serve(sctx, ln) }()
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: got %v; want nil after shutdown", err)
			}
		})
	}
	t.Cleanup(f.stop)
}

func (f *fixture) audit(_ context.Context, e *tokenward.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.auditFn != nil {
		if err := f.auditFn(e); err != nil {
			return err
		}
	}
	f.entries = append(f.entries, e)
	return nil
}

func (f *fixture) audited(action string) []*tokenward.AuditEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*tokenward.AuditEntry
	for _, e := range f.entries {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// super runs sql directly on the database as the superuser.
func (f *fixture) super(t testing.TB, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), f.superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

// putURL writes a new version of the route's secret: the role's URL with
// password, on a host the route's upstream replaces.
func (f *fixture) putURL(t testing.TB, password, query string) {
	t.Helper()
	v := fmt.Sprintf("postgres://%s:%s@db.invalid:1/%s%s", f.role, password, f.dbName, query)
	if _, err := f.core.PutSecret(t.Context(), f.admin, core.PutSecretInput{Project: "acme", Env: "prod", Name: "DATABASE_URL", Value: []byte(v)}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) token(t testing.TB, name string, grants ...string) (*tokenward.Token, string) {
	t.Helper()
	gs, err := tokenward.ParseGrants(grants)
	if err != nil {
		t.Fatal(err)
	}
	tok, secret, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: name, Kind: tokenward.TokenService, Grants: gs})
	if err != nil {
		t.Fatal(err)
	}
	return tok, secret
}

// connURL is how a client reaches the proxy: the route as the user name,
// the token as the password.
func (f *fixture) connURL(user, token, sslmode string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/anything?sslmode=%s", user, token, f.addr, sslmode)
}

func (f *fixture) connect(t *testing.T, user, token string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return pgx.Connect(ctx, f.connURL(user, token, "disable"))
}

// TestQueryThroughProxy: a pgx client signs in with its token and queries
// the upstream as the route's role; the session is audited with its bytes.
func TestQueryThroughProxy(t *testing.T) {
	f := newFixture(t)
	tok, secret := f.token(t, "ci-job", "gateway:pgprod")
	conn, err := f.connect(t, "pgprod", secret)
	if err != nil {
		t.Fatal(err)
	}
	var user, db string
	if err := conn.QueryRow(t.Context(), "SELECT current_user::text, current_database()::text").Scan(&user, &db); err != nil {
		t.Fatal(err)
	}
	if user != f.role || db != f.dbName {
		t.Fatalf("got user %s on %s; want %s on %s", user, db, f.role, f.dbName)
	}
	// A larger answer, so bytes out clearly exceed bytes in.
	var big string
	if err := conn.QueryRow(t.Context(), "SELECT repeat('x', 100000)").Scan(&big); err != nil || len(big) != 100_000 {
		t.Fatalf("got %d bytes, %v; want 100000, nil", len(big), err)
	}
	conn.Close(context.Background())
	f.stop()

	opened := f.audited(pgproxy.ActionConnect)
	if len(opened) != 1 || opened[0].Outcome != tokenward.OutcomeAllowed || opened[0].Status != 200 || opened[0].TokenID != tok.ID || opened[0].Resource != "gateway:pgprod" || opened[0].SourceIP != "127.0.0.1" {
		t.Fatalf("got connect entries %+v; want one allowed for %s on gateway:pgprod from 127.0.0.1", opened, tok.ID)
	}
	ended := f.audited(pgproxy.ActionSession)
	if len(ended) != 1 || ended[0].TokenID != tok.ID || ended[0].TokenName != "ci-job" || ended[0].RequestID != opened[0].RequestID {
		t.Fatalf("got session entries %+v; want one for %s, with the connect entry's request id", ended, tok.ID)
	}
	in, _ := strconv.Atoi(ended[0].Meta["bytes_in"])
	out, _ := strconv.Atoi(ended[0].Meta["bytes_out"])
	if in <= 0 || out < 100_000 || ended[0].Meta["duration_ms"] == "" {
		t.Fatalf("got meta %v; want bytes in > 0, bytes out >= 100000 and a duration", ended[0].Meta)
	}
	f.noLeak(t, secret)
}

// noLeak checks neither the audit entries nor the proxy's log hold the
// token or the upstream password.
func (f *fixture) noLeak(t *testing.T, token string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(f.entries)
	logs := f.logs.String()
	for _, s := range []string{token, f.password} {
		if strings.Contains(string(b), s) {
			t.Fatalf("an audit entry holds a token or password: %s", b)
		}
		if strings.Contains(logs, s) {
			t.Fatalf("the proxy's log holds a token or password: %s", logs)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRefusals: a client is refused with a clean PostgreSQL error and an
// audit entry, and neither holds what the client presented.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	revokedTok, revoked := f.token(t, "revoked", "gateway:pgprod")
	if _, err := f.core.RevokeToken(t.Context(), f.admin, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	_, other := f.token(t, "other-route", "gateway:pgstaging", "read:acme/prod/*")
	_, all := f.token(t, "all-routes", "gateway:*")
	unknown := strings.Replace(other, other[5:15], "AAAAAAAAAA", 1)
	tests := []struct {
		name, user, token string
		wantCode, wantMsg string
		wantOutcome       string
	}{
		{"wrong token", "pgprod", unknown, "28P01", "tokenward: ", tokenward.OutcomeDenied},
		{"not a token", "pgprod", "hunter2", "28P01", "tokenward: ", tokenward.OutcomeDenied},
		{"revoked token", "pgprod", revoked, "28P01", "is revoked", tokenward.OutcomeDenied},
		{"no grant", "pgprod", other, "28000", "not granted: gateway:pgprod", tokenward.OutcomeDenied},
		{"no such route", "pgnone", all, "28000", "route pgnone not found", tokenward.OutcomeError},
		{"bad route name", "PG;drop", all, "28000", "user name must be the name of a gateway route", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.audited(pgproxy.ActionConnect))
			conn, err := f.connect(t, tt.user, tt.token)
			if err == nil {
				conn.Close(context.Background())
				t.Fatal("connected; want a refusal")
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v; want a PostgreSQL error", err)
			}
			if pe.Code != tt.wantCode || pe.Severity != "FATAL" || !strings.Contains(pe.Message, tt.wantMsg) {
				t.Fatalf("got %s %s %q; want FATAL %s holding %q", pe.Severity, pe.Code, pe.Message, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(pe.Message, tt.token) || strings.Contains(pe.Message, f.password) {
				t.Fatalf("the error %q holds the token or the upstream password", pe.Message)
			}
			got := f.audited(pgproxy.ActionConnect)[before:]
			if tt.wantOutcome == "" {
				if len(got) != 0 {
					t.Fatalf("got entries %+v; want none (no password was asked)", got)
				}
				return
			}
			if len(got) != 1 || got[0].Outcome != tt.wantOutcome || got[0].Reason == "" {
				t.Fatalf("got entries %+v; want one %s with a reason", got, tt.wantOutcome)
			}
		})
	}
	// As the API's: the monitor reads a revoked token presented here as
	// a leak signal.
	if got := f.audited(pgproxy.ActionConnect); got[2].TokenID != revokedTok.ID || got[2].Status != 401 || got[3].Status != 403 {
		t.Errorf("the revoked token's refusal: got %s status %d, then status %d; want %s 401, then 403", got[2].TokenID, got[2].Status, got[3].Status, revokedTok.ID)
	}
	f.noLeak(t, revoked)
	f.noLeak(t, other)
}

// TestRotation: after the upstream password changes (ALTER ROLE and a new
// secret version) a new session signs in with the new one; between the
// two steps the gateway cannot, which shows it uses the secret's current
// version.
func TestRotation(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(t, "ci-job", "gateway:pgprod")
	old, err := f.connect(t, "pgprod", secret)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(context.Background())

	oldPassword, newPassword := f.password, "pw-"+rand.Text()
	f.super(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", f.role, newPassword))
	_, err = f.connect(t, "pgprod", secret)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" || strings.Contains(pe.Message, newPassword) || strings.Contains(pe.Message, f.password) {
		t.Fatalf("before the new version: got %v; want FATAL 08006 without a password", err)
	}
	if got := f.audited(pgproxy.ActionConnect); !strings.Contains(got[len(got)-1].Reason, "28P01") {
		t.Fatalf("got reason %q; want the upstream's SQLSTATE 28P01", got[len(got)-1].Reason)
	}
	f.putURL(t, newPassword, "")
	f.password = newPassword
	conn, err := f.connect(t, "pgprod", secret)
	if err != nil {
		t.Fatalf("after the new version: %v", err)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("got %d, %v; want 1, nil", one, err)
	}
	// The session opened before the rotation lives on.
	if err := old.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the old session: %v", err)
	}
	f.noLeak(t, secret)
	f.password = oldPassword
	f.noLeak(t, secret)
}

// TestCancel: a cancel request sent to the proxy with the key it issued
// cancels the upstream's running query.
func TestCancel(t *testing.T) {
	f := newFixture(t)
	conn, upstreamPID, done := f.sleeping(t)
	if conn.PID() == upstreamPID {
		t.Fatalf("the client was given the upstream's process id %d; want one of the proxy's", upstreamPID)
	}
	if err := conn.CancelRequest(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantCancelled(t, done)
}

// sleeping connects a client through the proxy with a new token and has
// the upstream run pg_sleep(60) for it: done gets the query's outcome.
func (f *fixture) sleeping(t *testing.T) (conn *pgconn.PgConn, upstreamPID uint32, done <-chan error) {
	t.Helper()
	_, secret := f.token(t, "ci-job", "gateway:pgprod")
	return f.sleepingAs(t, secret)
}

// sleepingAs is sleeping with the token secret.
func (f *fixture) sleepingAs(t *testing.T, secret string) (conn *pgconn.PgConn, upstreamPID uint32, done <-chan error) {
	t.Helper()
	conn, err := pgconn.Connect(t.Context(), f.connURL("pgprod", secret, "disable"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	res, err := conn.Exec(t.Context(), "SELECT pg_backend_pid()").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 32)
	upstreamPID = uint32(n)
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), "SELECT pg_sleep(60)").ReadAll()
		errc <- err
	}()
	// Wait until the upstream runs the sleep.
	for !f.running(t, upstreamPID) {
		time.Sleep(10 * time.Millisecond)
	}
	return conn, upstreamPID, errc
}

// running reports whether the upstream's backend pid runs the sleep.
func (f *fixture) running(t *testing.T, pid uint32) bool {
	t.Helper()
	return f.count(t, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'", pid) == 1
}

// exists reports whether the upstream's backend pid is still there.
func (f *fixture) exists(t *testing.T, pid uint32) bool {
	t.Helper()
	return f.count(t, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 1
}

// count runs a count query on the upstream's database as the superuser.
func (f *fixture) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	direct, err := pgx.Connect(t.Context(), f.superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.Background())
	var n int
	if err := direct.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// within polls cond every 10 ms until it holds (true) or d has passed.
func within(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start), true
}

// wantCancelled waits for the sleep's outcome: cancelled, within 20 s.
func wantCancelled(t *testing.T, done <-chan error) {
	t.Helper()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the query is still running 20 s after its cancel request")
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("got %v; want the query cancelled (57014)", err)
	}
}

// TestCancelThroughPeer: behind a load balancer a client's cancel request
// may reach another server than its session's. Two proxies on one store,
// peers 1 and 2: a cancel request sent to peer 2 for a session of peer 1
// is passed on and cancels the query; one that peer 2 got passed on (from
// a peer) is not passed on again, so two servers that disagree about
// their numbers cannot bounce a request between them.
func TestCancelThroughPeer(t *testing.T) {
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(p *pgproxy.Proxy) { p.PeerID, p.Peers = 1, map[int]string{2: ln2.Addr().String()} })
	var logs2 syncBuf
	peer2 := &fixture{proxy: &pgproxy.Proxy{Opener: f.core, Audit: f.audit, PeerID: 2, Peers: map[int]string{1: f.addr},
		Logger: slog.New(slog.NewTextHandler(&logs2, &slog.HandlerOptions{Level: slog.LevelDebug}))}}
	peer2.serve(t, ln2)

	conn, upstreamPID, done := f.sleeping(t)
	if got := conn.PID() >> 23; got != 1 {
		t.Fatalf("process id %#x carries peer %d; want 1", conn.PID(), got)
	}
	send := func(code uint32) {
		t.Helper()
		c, err := net.Dial("tcp", ln2.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := binary.BigEndian.AppendUint32([]byte{0, 0, 0, 16}, code)
		msg = binary.BigEndian.AppendUint32(msg, conn.PID())
		if _, err := c.Write(append(msg, conn.SecretKey()...)); err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, c) // until peer 2 has handled it and closed
	}
	send(1234<<16 | 7477) // as if a peer had passed it on
	if !strings.Contains(logs2.String(), "cancel request for no session of this server or its peers") {
		t.Fatalf("peer 2's log: %s; want the passed-on request dropped", logs2.String())
	}
	if !f.running(t, upstreamPID) {
		t.Fatal("a cancel request passed on twice cancelled the query")
	}
	send(80877102) // a client's CancelRequest
	wantCancelled(t, done)
}

// TestSessionEndsWhenItsTokenMayNot: an open session whose token is
// revoked, expires or loses its grant is ended within the recheck
// interval, a running query cancelled on the upstream first, and its end
// audited with why; a session of a token that may go on is left alone.
func TestSessionEndsWhenItsTokenMayNot(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, f *fixture, tok *tokenward.Token)
		why    string
	}{
		{"revoked", func(t *testing.T, f *fixture, tok *tokenward.Token) {
			if _, err := f.core.RevokeToken(t.Context(), f.admin, tok.ID); err != nil {
				t.Fatal(err)
			}
		}, "is revoked"},
		{"expired", func(t *testing.T, f *fixture, tok *tokenward.Token) {
			f.skew.Store(int64(2 * time.Hour)) // the token lives an hour
		}, "expired at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(p *pgproxy.Proxy) { p.RecheckEvery = 50 * time.Millisecond })
			gs, _ := tokenward.ParseGrants([]string{"gateway:pgprod"})
			tok, secret, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: "ci-job", Kind: tokenward.TokenService, Grants: gs, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			_, otherSecret := f.token(t, "other-job", "gateway:pgprod")
			other, err := pgconn.Connect(t.Context(), f.connURL("pgprod", otherSecret, "disable"))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(context.Background())
			conn, upstreamPID, done := f.sleepingAs(t, secret)
			tc.change(t, f, tok)
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("the sleep finished; want the session ended")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the session still runs 10 s after its token may no longer use the route")
			}
			if _, ok := within(10*time.Second, func() bool { return !f.exists(t, upstreamPID) }); !ok {
				t.Fatalf("the upstream's backend %d outlived its session", upstreamPID)
			}
			if _, err := conn.Exec(t.Context(), "SELECT 1").ReadAll(); err == nil {
				t.Fatal("a query on the ended session: got nil; want an error")
			}
			var ended *tokenward.AuditEntry
			within(10*time.Second, func() bool {
				for _, e := range f.audited(pgproxy.ActionSession) {
					if e.TokenID == tok.ID {
						ended = e
					}
				}
				return ended != nil
			})
			if ended == nil || !strings.Contains(ended.Meta["ended_by"], tc.why) {
				t.Fatalf("session end: got %+v; want meta.ended_by %q", ended, tc.why)
			}
			// The other token's session was checked many times, and goes on.
			if res, err := other.Exec(t.Context(), "SELECT 1").ReadAll(); err != nil || len(res) != 1 {
				t.Fatalf("the other token's session: %v; want it open", err)
			}
		})
	}
}
