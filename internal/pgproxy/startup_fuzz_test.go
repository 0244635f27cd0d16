package pgproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fuzzConn is a client connection whose bytes are the fuzzer's; what the
// proxy writes is kept.
type fuzzConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *fuzzConn) Read(b []byte) (int, error)  { return c.in.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error) { return c.out.Write(b) }
func (c *fuzzConn) Close() error                { return nil }
func (c *fuzzConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6543} }
func (c *fuzzConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

func encode(t testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// FuzzStartup feeds an untrusted client's bytes to the startup phase
// (negotiation, startup message, password message). It must never panic
// nor read past what the messages it accepted hold; it answers the
// negotiation requests with 'N' only (no certificate here), and what it
// returns is consistent: a cancel request or a startup message whose
// parameters hold no protocol option.
func FuzzStartup(f *testing.F) {
	startup := &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "pgprod", "database": "x"}}
	f.Add(encode(f, startup, &pgproto3.PasswordMessage{Password: "twc_x"}))
	f.Add(encode(f, &pgproto3.SSLRequest{}, &pgproto3.GSSEncRequest{}, startup, &pgproto3.PasswordMessage{Password: "p"}))
	f.Add(encode(f, &pgproto3.SSLRequest{}, &pgproto3.SSLRequest{}))
	f.Add(encode(f, &pgproto3.CancelRequest{ProcessID: 7, SecretKey: []byte{1, 2, 3, 4}}))
	f.Add(encode(f, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion32, Parameters: map[string]string{"user": "a", "_pq_.x": "1"}}, &pgproto3.Terminate{}))
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47})
	f.Add([]byte{0, 0, 0, 16, 4, 210, 29, 53, 0, 128, 0, 7, 1, 2, 3, 4}) // a peer's passed-on cancel request
	f.Add([]byte{0, 0, 0, 12, 4, 210, 29, 53, 0, 128, 0, 7})             // one without a key
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &fuzzConn{in: bytes.NewReader(b)}
		st, err := negotiate(c, nil)
		if strings.Trim(c.out.String(), "N") != "" {
			t.Fatalf("answered %q; want only 'N's", c.out.String())
		}
		if err != nil {
			if st != nil {
				t.Fatal("an error with a startup")
			}
			return
		}
		if st.tls || st.conn != net.Conn(c) {
			t.Fatal("TLS without a certificate")
		}
		if st.cancel != nil {
			if st.params != nil {
				t.Fatal("a cancel request with parameters")
			}
			if len(st.cancel.SecretKey) != 4 && st.passedOn {
				t.Fatalf("a passed-on cancel request with a key of %d bytes", len(st.cancel.SecretKey))
			}
			return
		}
		for k := range st.params {
			if strings.HasPrefix(k, "_pq_.") {
				t.Fatalf("protocol option %q kept as a parameter", k)
			}
		}
		rest := c.in.Len()
		pw, err := readPassword(c)
		if err == nil {
			if strings.IndexByte(pw, 0) >= 0 || len(pw) > maxPasswordPacket {
				t.Fatalf("got a password of %d bytes with a NUL or too long", len(pw))
			}
			if used := rest - c.in.Len(); used < len(pw)+6 {
				t.Fatalf("read %d bytes for a password of %d", used, len(pw))
			}
		} else if !errors.Is(err, errProtocol) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got error %v; want a protocol violation or the end of input", err)
		}
	})
}
