package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// SyslogSink sends each entry as one RFC 5424 message whose MSG is the
// entry's JSON. Network is "udp", "tcp" (RFC 6587 octet-counting framing),
// "unixgram" or "unix" (a stream socket, framed like TCP).
//
// It is a small writer rather than log/syslog: the standard package writes
// an RFC 3164-style header without the version, MSGID or structured-data
// fields collectors parse for RFC 5424, frames TCP by newline (which a
// message holding a newline breaks), and is frozen and not built on Windows.
type SyslogSink struct {
	Network  string
	Addr     string
	Facility int    // default 13, "log audit" (RFC 5424 table 1)
	AppName  string // default "tokenward"
	Hostname string // default os.Hostname()
	Timeout  time.Duration

	mu   sync.Mutex
	conn net.Conn
	pid  string
}

// NewSyslogSink returns a sink for network and addr.
func NewSyslogSink(network, addr string) (*SyslogSink, error) {
	switch network {
	case "udp", "tcp", "unixgram", "unix":
	default:
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit syslog: network %q; want udp, tcp, unixgram or unix", clip(network))
	}
	if addr == "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit syslog: no address")
	}
	host, _ := os.Hostname()
	return &SyslogSink{Network: network, Addr: addr, Facility: 13, AppName: "tokenward",
		Hostname: host, Timeout: 5 * time.Second}, nil
}

func (s *SyslogSink) Name() string { return "syslog" }

// Syslog severities used for outcomes.
const (
	sevError   = 3
	sevWarning = 4
	sevInfo    = 6
)

// FormatSyslog returns the RFC 5424 message for e (without transport
// framing).
func (s *SyslogSink) FormatSyslog(e *tokenward.AuditEntry) ([]byte, error) {
	sev := sevInfo
	switch e.Outcome {
	case tokenward.OutcomeDenied:
		sev = sevWarning
	case tokenward.OutcomeError:
		sev = sevError
	}
	msg, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("syslog: encode entry %d: %w", e.Seq, err)
	}
	if s.pid == "" {
		s.pid = strconv.Itoa(os.Getpid())
	}
	b := make([]byte, 0, len(msg)+128)
	b = fmt.Appendf(b, "<%d>1 %s %s %s %s audit - ", s.Facility*8+sev,
		e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		headerField(s.Hostname, 255), headerField(s.AppName, 48), s.pid)
	return append(b, msg...), nil
}

// headerField makes a header field valid: printable US-ASCII without
// spaces, at most n bytes, "-" when empty.
func headerField(v string, n int) string {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v) && len(out) < n; i++ {
		if c := v[i]; c > 32 && c < 127 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

func (s *SyslogSink) Write(ctx context.Context, e *tokenward.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, err := s.FormatSyslog(e)
	if err != nil {
		return err
	}
	if s.Network == "tcp" || s.Network == "unix" {
		msg = append([]byte(strconv.Itoa(len(msg))+" "), msg...)
	}
	if s.conn == nil {
		d := net.Dialer{Timeout: s.Timeout}
		if s.conn, err = d.DialContext(ctx, s.Network, s.Addr); err != nil {
			return fmt.Errorf("syslog: dial: %w", err)
		}
	}
	if s.Timeout > 0 {
		s.conn.SetWriteDeadline(time.Now().Add(s.Timeout))
	}
	if _, err := s.conn.Write(msg); err != nil {
		// Drop the connection: the broker's retry dials again.
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("syslog: write: %w", err)
	}
	return nil
}

func (s *SyslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
