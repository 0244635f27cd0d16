package pgproxy_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tokenward/tokenward/internal/pgproxy"
)

// serveBare serves p on a loopback listener until the test ends: for the
// startup phase's refusals, which need no engine nor upstream.
func serveBare(t *testing.T, p *pgproxy.Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// startupPacket is a startup message of protocol version with the
// parameters kv (name, value, ...), as a client writes it.
func startupPacket(version uint32, kv ...string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0, 0, 0, 0}, version)
	for _, s := range kv {
		b = append(append(b, s...), 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b))) // #nosec G115 -- a test's short packet
	return b
}

// TestProtocolViolationInsideTLS: a client that broke the protocol after
// the TLS handshake gets its FATAL 08P01 inside TLS, as every other error
// of the startup phase, not as plaintext bytes in the TLS stream (which
// the client reads as a broken TLS record instead of the error).
func TestProtocolViolationInsideTLS(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"a second SSLRequest", []byte{0, 0, 0, 8, 4, 210, 22, 47}},
		{"a GSSENCRequest", []byte{0, 0, 0, 8, 4, 210, 22, 48}},
		{"protocol 2.0", startupPacket(2<<16, "user", "pgprod")},
		{"a packet of 20000 bytes", []byte{0, 0, 0x4e, 0x20, 0, 3, 0, 0}},
		{"no terminator", []byte{0, 0, 0, 13, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0}},
	}
	addr := serveBare(t, &pgproxy.Proxy{TLSConfig: selfSigned(t), StartupTimeout: 5 * time.Second})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := raw.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47}); err != nil { // SSLRequest
				t.Fatal(err)
			}
			var b [1]byte
			if _, err := io.ReadFull(raw, b[:]); err != nil || b[0] != 'S' {
				t.Fatalf("SSLRequest: got %q, %v; want 'S'", b[0], err)
			}
			tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) // #nosec G402 -- a test's self-signed certificate
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			if _, err := tc.Write(tt.pkt); err != nil {
				t.Fatal(err)
			}
			m, err := pgproto3.NewFrontend(tc, tc).Receive()
			if err != nil {
				t.Fatalf("reading the answer inside TLS: %v; want a FATAL 08P01", err)
			}
			if e, ok := m.(*pgproto3.ErrorResponse); !ok || e.Code != "08P01" || e.Severity != "FATAL" {
				t.Fatalf("got %#v; want FATAL 08P01", m)
			}
		})
	}
}

// signIn runs the startup phase by hand as route pgprod with secret and
// returns the client after ReadyForQuery.
func signIn(t *testing.T, addr, secret string) *rawClient {
	t.Helper()
	c := passwordSent(t, addr, secret)
	for {
		switch m := c.receive().(type) {
		case *pgproto3.ReadyForQuery:
			return c
		case *pgproto3.ErrorResponse:
			t.Fatalf("got error %s %s", m.Code, m.Message)
		}
	}
}

// TestEndedSessionRunsNoMore: when a session's token is revoked, no query
// the client sent goes on running on the upstream after the session
// ended, pipelined ones included: the upstream's backend is gone soon
// after, not when a query the client queued behind the cancelled one
// finishes.
func TestEndedSessionRunsNoMore(t *testing.T) {
	tests := []struct {
		name    string
		queries []string
	}{
		{"one query", []string{"SELECT pg_sleep(60)"}},
		{"two pipelined queries", []string{"SELECT pg_sleep(60)", "SELECT pg_sleep(60)"}},
		{"five pipelined queries", []string{"SELECT pg_sleep(60)", "SELECT pg_sleep(60)", "SELECT pg_sleep(60)", "SELECT pg_sleep(60)", "SELECT pg_sleep(60)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(p *pgproxy.Proxy) { p.RecheckEvery = 50 * time.Millisecond })
			tok, secret := f.token(t, "ci-job", "gateway:pgprod")
			c := signIn(t, f.addr, secret)
			c.send(&pgproto3.Query{String: "SELECT pg_backend_pid()"})
			var pid uint64
			for done := false; !done; {
				switch m := c.receive().(type) {
				case *pgproto3.DataRow:
					pid, _ = strconv.ParseUint(string(m.Values[0]), 10, 32)
				case *pgproto3.ReadyForQuery:
					done = true
				}
			}
			var msgs []pgproto3.FrontendMessage
			for _, q := range tt.queries {
				msgs = append(msgs, &pgproto3.Query{String: q})
			}
			c.send(msgs...)
			if _, ok := within(10*time.Second, func() bool { return f.running(t, uint32(pid)) }); !ok {
				t.Fatal("the sleep does not run")
			}
			if _, err := f.core.RevokeToken(t.Context(), f.admin, tok.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, c.conn); err != nil {
				t.Fatalf("the session's end: %v; want the connection closed", err)
			}
			if d, ok := within(5*time.Second, func() bool { return !f.exists(t, uint32(pid)) }); !ok {
				t.Fatalf("the upstream's backend %d still runs %s after its session ended (active: %d)", pid, d,
					f.count(t, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", pid))
			}
		})
	}
}

// TestNewerMinorProtocol: a client asking for a 3.x protocol other than
// 3.0 is told 3.0 with NegotiateProtocolVersion and goes on signing in,
// as PostgreSQL answers a newer minor version (the point of the
// negotiation: a newer client works with an older server), rather than
// being refused as a protocol violation.
func TestNewerMinorProtocol(t *testing.T) {
	addr := serveBare(t, &pgproxy.Proxy{StartupTimeout: 5 * time.Second})
	for _, minor := range []uint32{1, 2, 3, 7, 0xffff} {
		t.Run("3."+strconv.Itoa(int(minor)), func(t *testing.T) {
			c := dialRaw(t, addr)
			if _, err := c.conn.Write(startupPacket(3<<16|minor, "user", "pgprod", "_pq_.x", "1")); err != nil {
				t.Fatal(err)
			}
			msg := c.receive()
			m, ok := msg.(*pgproto3.NegotiateProtocolVersion)
			if !ok || m.NewestMinorProtocol != 0 || len(m.UnrecognizedOptions) != 1 || m.UnrecognizedOptions[0] != "_pq_.x" {
				t.Fatalf("got %#v; want NegotiateProtocolVersion 3.0 refusing _pq_.x", msg)
			}
			if m, ok := c.receive().(*pgproto3.AuthenticationCleartextPassword); !ok {
				t.Fatalf("got %#v; want AuthenticationCleartextPassword", m)
			}
		})
	}
}
