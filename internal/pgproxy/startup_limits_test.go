package pgproxy_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgproxy"
)

// refusedAtAccept says whether conn was refused as it was accepted: a
// FATAL 53300 before the client sent anything.
func refusedAtAccept(t *testing.T, conn net.Conn) bool {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := pgproto3.NewFrontend(conn, conn).Receive()
	if err != nil {
		t.Fatalf("reading the refusal: %v; want FATAL 53300", err)
	}
	e, ok := m.(*pgproto3.ErrorResponse)
	return ok && e.Code == "53300" && e.Severity == "FATAL"
}

// TestIdleStartupsLeaveSessionsBe: connections that never sign in count
// against the startup phase's limits, per address and overall, not
// against MaxSessions: with more of them open than MaxSessions, from one
// address, a client from another address still signs in, and the excess
// from the first is refused with 53300 as it is accepted.
func TestIdleStartupsLeaveSessionsBe(t *testing.T) {
	const perAddr = 3
	f := newFixture(t, func(p *pgproxy.Proxy) {
		p.MaxSessions, p.MaxStartupsPerAddr, p.MaxStartups = 2, perAddr, 8
		p.StartupTimeout = time.Minute // the idle ones stay through the test
	})
	_, secret := f.token(t, "ci-job", "gateway:pgprod")

	// 127.0.0.2 is loopback too, but another address than 127.0.0.1's.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	for i := range 2 * perAddr {
		conn, err := d.Dial("tcp", f.addr)
		if err != nil {
			t.Skipf("cannot dial from 127.0.0.2: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		// The proxy accepts one connection after another, so once one is
		// refused those before it hold their places.
		if i >= perAddr && !refusedAtAccept(t, conn) {
			t.Fatalf("idle connection %d from one address: got no 53300; want it refused past %d", i+1, perAddr)
		}
	}

	for range 2 { // MaxSessions
		conn, err := f.connect(t, "pgprod", secret)
		if err != nil {
			t.Fatalf("signing in while %d idle connections are open: got %v; want a session", perAddr, err)
		}
		defer conn.Close(context.Background())
		var one int
		if err := conn.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1: got %d, %v", one, err)
		}
	}
	// Sessions keep their own limit: a third client is refused once its
	// token is accepted, and the refusal audited.
	_, err := f.connect(t, "pgprod", secret)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" {
		t.Fatalf("a session past MaxSessions: got %v; want 53300", err)
	}
	var refused []*tokenward.AuditEntry
	for _, e := range f.audited(pgproxy.ActionConnect) {
		if e.Outcome != tokenward.OutcomeAllowed {
			refused = append(refused, e)
		}
	}
	if len(refused) != 1 || refused[0].Outcome != tokenward.OutcomeDenied || refused[0].Status != 429 {
		t.Fatalf("got refusals %+v; want one denied with status 429", refused)
	}
	f.noLeak(t, secret)
}

// TestStartupsPerAddressByNetwork: an IPv6 client counts by its /64, so
// it takes no fresh place per address of it; another /64 and IPv4 clients
// count apart.
func TestStartupsPerAddressByNetwork(t *testing.T) {
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&pgproxy.Proxy{MaxStartupsPerAddr: 1, StartupTimeout: time.Minute}).Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	tests := []struct {
		ip      string
		refused bool
	}{
		{"2001:db8:0:1::1", false},
		{"2001:db8:0:1::2", true}, // the same /64
		{"2001:db8:0:1:ffff:ffff:ffff:ffff", true},
		{"2001:db8:0:2::1", false},
		{"192.0.2.1", false},
		{"::ffff:192.0.2.1", true}, // the same IPv4 address
		{"192.0.2.2", false},
	}
	for _, tt := range tests {
		server, client := net.Pipe()
		t.Cleanup(func() { client.Close() })
		ln.conns <- remoteConn{server, &net.TCPAddr{IP: net.ParseIP(tt.ip), Port: 40000}}
		if !tt.refused {
			continue // its place held: the next connection is accepted after it
		}
		if !refusedAtAccept(t, client) {
			t.Errorf("%s: got no 53300; want it refused, its network's place taken", tt.ip)
		}
	}
	// One left to check: an admitted one answers its startup message (with
	// the TLS refusal a non-loopback client gets), not with 53300.
	server, client := net.Pipe()
	defer client.Close()
	ln.conns <- remoteConn{server, &net.TCPAddr{IP: net.ParseIP("2001:db8:0:3::1"), Port: 40000}}
	client.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(client, client)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "pgprod"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := fe.Receive()
	if e, ok := m.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != "28000" {
		t.Fatalf("a client of another /64: got %#v, %v; want its startup answered (28000, TLS)", m, err)
	}
}

// blockingOpener waits for the end of its context and says whether it had
// a deadline.
type blockingOpener struct{ hasDeadline chan bool }

func (o blockingOpener) OpenDBRoute(ctx context.Context, _, _, _ string) (*tokenward.Token, *tokenward.DBRoute, []byte, error) {
	_, ok := ctx.Deadline()
	o.hasDeadline <- ok
	<-ctx.Done()
	return nil, nil, nil, ctx.Err()
}

// lateOpener opens the route, then returns after the startup timeout has
// passed, as an Opener that does not heed its context.
type lateOpener struct {
	pgproxy.Opener
	after time.Duration
}

func (o lateOpener) OpenDBRoute(ctx context.Context, route, token, ip string) (*tokenward.Token, *tokenward.DBRoute, []byte, error) {
	tok, r, v, err := o.Opener.OpenDBRoute(ctx, route, token, ip)
	time.Sleep(o.after)
	return tok, r, v, err
}

// passwordSent runs the startup phase by hand up to the password and
// returns the client, waiting for the proxy's answer.
func passwordSent(t *testing.T, addr, secret string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "pgprod"}})
	if _, ok := c.receive().(*pgproto3.AuthenticationCleartextPassword); !ok {
		t.Fatal("want AuthenticationCleartextPassword")
	}
	c.send(&pgproto3.PasswordMessage{Password: secret})
	return c
}

// wantStartupTimeout reads the proxy's answer: FATAL 08006 saying the
// sign-in took longer than the startup timeout.
func wantStartupTimeout(t *testing.T, c *rawClient) {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	m, err := c.fe.Receive()
	if err != nil {
		t.Fatalf("got %v; want FATAL 08006 at the startup timeout", err)
	}
	if e, ok := m.(*pgproto3.ErrorResponse); !ok || e.Code != "08006" || !strings.Contains(e.Message, "startup timeout") {
		t.Fatalf("got %#v; want FATAL 08006 about the startup timeout", m)
	}
}

// TestStartupTimeoutBoundsTheOpener: the startup timeout bounds the whole
// sign-in: the Opener runs within the deadline set when the connection was
// accepted, and a sign-in whose Opener returns past it goes no further
// (no upstream sign-in on a fresh timeout).
func TestStartupTimeoutBoundsTheOpener(t *testing.T) {
	const timeout = 500 * time.Millisecond
	t.Run("an opener that waits", func(t *testing.T) {
		o := blockingOpener{hasDeadline: make(chan bool, 1)}
		addr := serveBare(t, &pgproxy.Proxy{Opener: o, StartupTimeout: timeout})
		c := passwordSent(t, addr, "tw_not-a-real-token")
		if !<-o.hasDeadline {
			t.Fatal("the Opener's context has no deadline; want the startup phase's")
		}
		wantStartupTimeout(t, c)
	})
	t.Run("an opener that returns late", func(t *testing.T) {
		f := newFixture(t, func(p *pgproxy.Proxy) {
			p.Opener = lateOpener{Opener: p.Opener, after: timeout + 100*time.Millisecond}
			p.StartupTimeout = timeout
		})
		_, secret := f.token(t, "ci-job", "gateway:pgprod")
		wantStartupTimeout(t, passwordSent(t, f.addr, secret))
		got := f.audited(pgproxy.ActionConnect)
		if len(got) != 1 || got[0].Outcome == tokenward.OutcomeAllowed || !strings.Contains(got[0].Reason, "startup timeout") {
			t.Fatalf("got entries %+v; want one refusal for the startup timeout", got)
		}
		f.noLeak(t, secret)
	})
}
