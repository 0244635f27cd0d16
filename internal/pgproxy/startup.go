package pgproxy

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The startup phase reads a client's messages with exact framing (a length,
// then exactly that many bytes) and leaves their decoding to pgproto3: no
// byte is read ahead, so nothing a client sends before the TLS handshake
// can be taken as sent inside it, and the relay starts at the first byte
// after the password message.

const (
	maxStartupPacket  = 10_000 // PostgreSQL's MAX_STARTUP_PACKET_LENGTH
	maxPasswordPacket = 4 << 10
	// maxNegotiations bounds the requests before the startup message: an
	// SSLRequest and a GSSENCRequest, once each.
	maxNegotiations = 2
)

// errProtocol is a client that broke the protocol; it gets a FATAL 08P01.
var errProtocol = errors.New("protocol violation")

// inTLSError is an error of the startup phase after the TLS handshake:
// conn is the client inside TLS, where a FATAL to it must go.
type inTLSError struct {
	conn net.Conn
	err  error
}

func (e *inTLSError) Error() string { return e.err.Error() }
func (e *inTLSError) Unwrap() error { return e.err }

// startup is what the startup phase learned of a client.
type startup struct {
	conn   net.Conn // the client, inside TLS when it asked for it
	tls    bool
	params map[string]string
	// unrecognized are the protocol options (_pq_.*) the client asked for,
	// and minor the protocol's minor version when not 0: both are refused
	// with NegotiateProtocolVersion.
	unrecognized []string
	minor        uint32
	cancel       *pgproto3.CancelRequest // set instead of params for a cancel request
	passedOn     bool                    // the cancel request is a peer's, passed on (passedOnCancelCode)
}

// The request codes of a cancel request: PostgreSQL's, and the one a peer
// passes a client's on with (a code PostgreSQL does not use), which is
// never passed on again.
const (
	cancelRequestCode  = 80877102
	passedOnCancelCode = 1234<<16 | 7477
)

// readPacket reads one startup-phase packet (no type byte): its length,
// then exactly the rest of it. The whole packet, length included, is
// returned.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:]))) // #nosec G115 -- read as PostgreSQL's signed Int32 on purpose: a negative length fails the range check below
	if n < 8 || n > maxStartupPacket {
		return nil, fmt.Errorf("%w: startup packet of %d bytes", errProtocol, n)
	}
	buf := make([]byte, n)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// negotiate runs the startup phase up to the startup message: SSLRequest
// (answered 'S' and a TLS handshake when tlsConfig is set, else 'N'),
// GSSENCRequest ('N'), CancelRequest (returned in startup.cancel; nothing
// is answered to it), then the StartupMessage. An error after the TLS
// handshake is an *inTLSError.
func negotiate(conn net.Conn, tlsConfig *tls.Config) (_ *startup, err error) {
	st := &startup{conn: conn}
	defer func() {
		if err != nil && st.tls {
			err = &inTLSError{conn: st.conn, err: err}
		}
	}()
	sawSSL, sawGSS := false, false
	for range maxNegotiations + 1 {
		pkt, err := readPacket(st.conn)
		if err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint32(pkt[4:]) == passedOnCancelCode {
			if len(pkt) != 16 {
				return nil, fmt.Errorf("%w: a passed-on cancel request of %d bytes", errProtocol, len(pkt))
			}
			st.cancel = &pgproto3.CancelRequest{ProcessID: binary.BigEndian.Uint32(pkt[8:]), SecretKey: bytes.Clone(pkt[12:])}
			st.passedOn = true
			return st, nil
		}
		// A startup message of any 3.x protocol is decoded as 3.0's (the
		// minor version is answered with NegotiateProtocolVersion, as
		// PostgreSQL does): pgproto3 decodes 3.0 and 3.2 only.
		var minor uint32
		if v := binary.BigEndian.Uint32(pkt[4:]); v>>16 == 3 {
			minor = v & 0xffff
			binary.BigEndian.PutUint32(pkt[4:], 3<<16)
		}
		msg, err := pgproto3.NewBackend(bytes.NewReader(pkt), io.Discard).ReceiveStartupMessage()
		if err != nil {
			return nil, fmt.Errorf("%w: %s", errProtocol, firstLine(err))
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if sawSSL {
				return nil, fmt.Errorf("%w: a second SSLRequest", errProtocol)
			}
			sawSSL = true
			if tlsConfig == nil {
				if _, err := st.conn.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := st.conn.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tc := tls.Server(st.conn, tlsConfig)
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			st.conn, st.tls = tc, true
		case *pgproto3.GSSEncRequest:
			if sawGSS || st.tls {
				return nil, fmt.Errorf("%w: an unexpected GSSENCRequest", errProtocol)
			}
			sawGSS = true
			if _, err := st.conn.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case *pgproto3.CancelRequest:
			st.cancel = &pgproto3.CancelRequest{ProcessID: m.ProcessID, SecretKey: bytes.Clone(m.SecretKey)}
			return st, nil
		case *pgproto3.StartupMessage:
			st.params = map[string]string{}
			for k, v := range m.Parameters {
				if strings.HasPrefix(k, "_pq_.") {
					st.unrecognized = append(st.unrecognized, k)
					continue
				}
				st.params[k] = v
			}
			st.minor = minor
			return st, nil
		default:
			return nil, fmt.Errorf("%w: unexpected %T", errProtocol, msg)
		}
	}
	return nil, fmt.Errorf("%w: no startup message", errProtocol)
}

// readPassword reads the client's PasswordMessage after
// AuthenticationCleartextPassword was sent. io.EOF: the client left
// without one (psql does, to prompt for it and connect again).
func readPassword(r io.Reader) (string, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", err
	}
	if hdr[0] == 'X' {
		return "", io.EOF // Terminate
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[1:]))) // #nosec G115 -- read as PostgreSQL's signed Int32 on purpose: a negative length fails the range check below
	if hdr[0] != 'p' || n < 5 || n > maxPasswordPacket {
		return "", fmt.Errorf("%w: want a password message", errProtocol)
	}
	buf := make([]byte, 1+n)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[5:]); err != nil {
		return "", err
	}
	be := pgproto3.NewBackend(bytes.NewReader(buf), io.Discard)
	if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return "", err
	}
	msg, err := be.Receive()
	if err != nil {
		return "", fmt.Errorf("%w: bad password message", errProtocol)
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return "", fmt.Errorf("%w: want a password message", errProtocol)
	}
	return pm.Password, nil
}

// firstLine keeps a decoding error short and free of what the client sent
// beyond it.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}
