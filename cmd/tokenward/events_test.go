package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/monitor"
)

// TestEventLineControlChars: a change event's reason can be a client's
// text (a bulk rotation's --reason); `events tail` must not pass its
// control characters to the terminal, nor let it forge a line.
func TestEventLineControlChars(t *testing.T) {
	e := monitor.Event{Type: monitor.EventSecretRotated, Time: time.Unix(1_800_000_000, 0), Resource: "payments/prod/KEY", Version: 3,
		Reason: "nightly\x1b]0;pwned\x07\n2027-01-15T08:00:00Z  token.revoked    token:tok_admin (forged)\x9b2J"}
	got := eventLine(e)
	if strings.ContainsAny(got, "\x1b\x07\n\r") || strings.ContainsRune(got, '\u009b') {
		t.Errorf("got %q; want no control characters", got)
	}
	if !strings.HasPrefix(got, "2027-01-15T08:00:00Z  secret.rotated   payments/prod/KEY v3 (nightly?]0;pwned?") {
		t.Errorf("got %q; want the event's own fields first", got)
	}
}
