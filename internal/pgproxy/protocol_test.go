package pgproxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgproxy"
)

// rawClient speaks the protocol by hand, to see every message the proxy
// sends.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	fe   *pgproto3.Frontend
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawClient{t: t, conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
}

func (c *rawClient) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) byte1() byte {
	c.t.Helper()
	var b [1]byte
	if _, err := io.ReadFull(c.conn, b[:]); err != nil {
		c.t.Fatal(err)
	}
	return b[0]
}

// receive reads the next message.
func (c *rawClient) receive() pgproto3.BackendMessage {
	c.t.Helper()
	m, err := c.fe.Receive()
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// TestRawStartup: the negotiation requests get 'N', a 3.2 client with a
// protocol option is told 3.0 and the option refused, and what the client
// sees up to ReadyForQuery holds neither the upstream's password nor its
// process id; a query then runs over the relay.
func TestRawStartup(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(t, "ci-job", "gateway:pgprod")
	c := dialRaw(t, f.addr)
	c.send(&pgproto3.GSSEncRequest{})
	if b := c.byte1(); b != 'N' {
		t.Fatalf("GSSENCRequest: got %q; want 'N'", b)
	}
	c.send(&pgproto3.SSLRequest{})
	if b := c.byte1(); b != 'N' {
		t.Fatalf("SSLRequest without a certificate: got %q; want 'N'", b)
	}
	c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion32, Parameters: map[string]string{"user": "pgprod", "database": "x", "application_name": "raw-test", "_pq_.future": "1"}})
	if m, ok := c.receive().(*pgproto3.NegotiateProtocolVersion); !ok || m.NewestMinorProtocol != 0 || !slices.Equal(m.UnrecognizedOptions, []string{"_pq_.future"}) {
		t.Fatalf("got %#v; want NegotiateProtocolVersion 3.0 refusing _pq_.future", m)
	}
	if _, ok := c.receive().(*pgproto3.AuthenticationCleartextPassword); !ok {
		t.Fatal("want AuthenticationCleartextPassword")
	}
	c.send(&pgproto3.PasswordMessage{Password: secret})
	var seen bytes.Buffer
	var pid uint32
	params := map[string]string{}
	for done := false; !done; {
		switch m := c.receive().(type) {
		case *pgproto3.AuthenticationOk:
		case *pgproto3.ParameterStatus:
			params[m.Name] = m.Value
			seen.WriteString(m.Name + "=" + m.Value + "\n")
		case *pgproto3.BackendKeyData:
			pid = m.ProcessID
		case *pgproto3.ReadyForQuery:
			done = true
		case *pgproto3.ErrorResponse:
			t.Fatalf("got error %s %s", m.Code, m.Message)
		default:
			t.Fatalf("unexpected %T", m)
		}
	}
	if params["application_name"] != "raw-test" || params["server_version"] == "" {
		t.Fatalf("got parameters %v; want the upstream's, with the client's application_name", params)
	}
	if strings.Contains(seen.String(), f.password) || strings.Contains(seen.String(), secret) {
		t.Fatalf("the parameters hold the upstream password or the token: %s", seen.String())
	}
	c.send(&pgproto3.Query{String: "SELECT pg_backend_pid()"})
	var upstreamPID string
	for done := false; !done; {
		switch m := c.receive().(type) {
		case *pgproto3.DataRow:
			upstreamPID = string(m.Values[0])
		case *pgproto3.ReadyForQuery:
			done = true
		case *pgproto3.ErrorResponse:
			t.Fatalf("got error %s %s", m.Code, m.Message)
		}
	}
	if upstreamPID == "" || upstreamPID == strconv.FormatUint(uint64(pid), 10) {
		t.Fatalf("the client's process id %d is the upstream's %s; want one of the proxy's", pid, upstreamPID)
	}
	c.send(&pgproto3.Terminate{})
}

// TestPsql: psql signs in with the token in PGPASSWORD and queries.
func TestPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed")
	}
	f := newFixture(t)
	_, secret := f.token(t, "ci-job", "gateway:pgprod")
	host, port, _ := net.SplitHostPort(f.addr)
	cmd := exec.CommandContext(t.Context(), psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"host="+host+" port="+port+" user=pgprod dbname=anything sslmode=prefer connect_timeout=20", "-c", "SELECT current_user || ' ' || 21*2")
	cmd.Env = []string{"PGPASSWORD=" + secret, "PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v: %s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), f.role+" 42"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
	// A revoked token: psql prints the proxy's message, without the token.
	_, bad := f.token(t, "no-grant", "read:acme/prod/*")
	cmd = exec.CommandContext(t.Context(), psql, "-X", "-w", "host="+host+" port="+port+" user=pgprod sslmode=disable", "-c", "SELECT 1")
	cmd.Env = []string{"PGPASSWORD=" + bad, "PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not granted: gateway:pgprod") || strings.Contains(string(out), bad) {
		t.Fatalf("psql with a token without the grant: got %v: %s; want the refusal, without the token", err, out)
	}
}

// selfSigned returns a TLS configuration with a fresh certificate for
// 127.0.0.1.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	der, key, err := newCert()
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// TestClientTLS: with a certificate the proxy offers TLS, and a client
// that asks for it signs in over it.
func TestClientTLS(t *testing.T) {
	cfg := selfSigned(t)
	f := newFixture(t, func(p *pgproxy.Proxy) { p.TLSConfig = cfg })
	_, secret := f.token(t, "ci-job", "gateway:pgprod")
	conn, err := pgconn.Connect(t.Context(), f.connURL("pgprod", secret, "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, ok := conn.Conn().(*tls.Conn); !ok {
		t.Fatalf("got a %T; want the session inside TLS", conn.Conn())
	}
	if _, err := conn.Exec(t.Context(), "SELECT 1").ReadAll(); err != nil {
		t.Fatal(err)
	}
}

// pipeListener hands Serve connections that claim a remote address.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// TestPlaintextFromAfar: a client on a non-loopback address without TLS is
// refused before it is asked for the password.
func TestPlaintextFromAfar(t *testing.T) {
	f := newFixture(t)
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	f.serve(t, ln)
	server, client := net.Pipe()
	ln.conns <- remoteConn{server, &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 40000}}
	defer client.Close()
	client.SetDeadline(time.Now().Add(30 * time.Second))
	fe := pgproto3.NewFrontend(client, client)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "pgprod"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.(*pgproto3.ErrorResponse)
	if !ok || e.Code != "28000" || !strings.Contains(e.Message, "TLS") {
		t.Fatalf("got %#v; want FATAL 28000 asking for TLS", m)
	}
	got := f.audited(pgproxy.ActionConnect)
	if len(got) != 1 || got[0].Outcome != tokenward.OutcomeDenied || got[0].SourceIP != "203.0.113.7" {
		t.Fatalf("got entries %+v; want one denied from 203.0.113.7", got)
	}
}

// TestLimits: sessions beyond MaxSessions are refused with 53300, and a
// client silent past StartupTimeout is disconnected.
func TestLimits(t *testing.T) {
	f := newFixture(t, func(p *pgproxy.Proxy) { p.MaxSessions = 1; p.StartupTimeout = 500 * time.Millisecond })
	_, secret := f.token(t, "ci-job", "gateway:pgprod")

	silent := dialRaw(t, f.addr)
	silent.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if n, err := silent.conn.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a silent client: got %d bytes, %v; want the connection closed", n, err)
	}

	conn, err := f.connect(t, "pgprod", secret)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	_, err = f.connect(t, "pgprod", secret)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" {
		t.Fatalf("a second session: got %v; want 53300", err)
	}
}

// TestAuditFailClosed: a session whose opening the audit log cannot record
// is refused.
func TestAuditFailClosed(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(t, "ci-job", "gateway:pgprod")
	f.mu.Lock()
	f.auditFn = func(e *tokenward.AuditEntry) error {
		if e.Outcome == tokenward.OutcomeAllowed {
			return errors.New("disk full")
		}
		return nil
	}
	f.mu.Unlock()
	_, err := f.connect(t, "pgprod", secret)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" || !strings.Contains(pe.Message, "audit") {
		t.Fatalf("got %v; want 08006 about the audit log", err)
	}
}

// TestUpstreamSSLMode: the URL's sslmode holds: verify-full refuses an
// upstream whose certificate is not trusted, and the client learns no more
// than that the sign-in failed; with the certificate as sslrootcert it
// signs in.
func TestUpstreamSSLMode(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(t, "ci-job", "gateway:pgprod")
	f.putURL(t, f.password, "?sslmode=verify-full")
	_, err := f.connect(t, "pgprod", secret)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" || pe.Message != "tokenward: cannot sign in to the route's upstream database" {
		t.Fatalf("got %v; want 08006 cannot sign in", err)
	}
	f.putURL(t, f.password, "?sslmode=verify-full&sslrootcert="+upstreamTLS.dir+"/server.crt")
	conn, err := f.connect(t, "pgprod", secret)
	if err != nil {
		t.Fatalf("verify-full with the upstream's certificate: %v", err)
	}
	conn.Close(context.Background())
	// Settings that would read the server's files or go elsewhere are
	// refused before anything is dialed.
	for _, q := range []string{"?passfile=/etc/passwd", "?host=/var/run/postgresql", "?sslkey=/etc/ssl/private/k.pem", "?servicefile=/tmp/x&service=y"} {
		f.putURL(t, f.password, q)
		_, err := f.connect(t, "pgprod", secret)
		if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Message, "not a usable postgres:// URL") {
			t.Fatalf("%s: got %v; want 28000 not a usable URL", q, err)
		}
	}
	f.putURL(t, f.password, "?sslmode=disable&application_name=ok")
	conn, err = f.connect(t, "pgprod", secret)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	f.noLeak(t, secret)
}
