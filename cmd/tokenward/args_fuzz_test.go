//go:build !tokenward_client

package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// printableBounded fails when an error message about input s could carry
// s itself: every argument error shows the input through
// tokenward.Printable, which keeps it short and free of control bytes.
func printableBounded(t *testing.T, what, s string, err error) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 300 {
		t.Fatalf("%s(%q): error message is unbounded: %d bytes", what, s, len(msg))
	}
	for _, c := range []byte(msg) {
		if c < 0x20 || c == 0x7f {
			t.Fatalf("%s(%q): error %q holds control byte %#x", what, s, msg, c)
		}
	}
}

// FuzzSplitPath checks the PROJECT/ENV and PROJECT/ENV/NAME splitter:
// what it accepts has exactly n non-empty parts that join back to the
// input; what it refuses is a usage error (exit 2) that shows the input
// only in printable, bounded form.
func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"payments/prod", "payments/prod/STRIPE_KEY", "a//b", "/a/b", "a/b/", "", "/", "a/b/c/d", "a\x1b[31m/b"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, three bool) {
		n := 2
		if three {
			n = 3
		}
		parts, err := splitPath(s, n)
		if err != nil {
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("splitPath(%q, %d): got %v; want a usage error", s, n, err)
			}
			printableBounded(t, "splitPath", s, err)
			if p := strings.Split(s, "/"); len(p) == n && !strings.Contains("/"+s+"/", "//") {
				t.Fatalf("splitPath(%q, %d) refused %d non-empty parts: %v", s, n, n, err)
			}
			return
		}
		if len(parts) != n || strings.Join(parts, "/") != s {
			t.Fatalf("splitPath(%q, %d): got %q; want %d parts joining to the input", s, n, parts, n)
		}
		for _, p := range parts {
			if p == "" || strings.Contains(p, "/") {
				t.Fatalf("splitPath(%q, %d): got part %q", s, n, p)
			}
		}
	})
}

// FuzzParseDuration checks the CLI's durations (--ttl, --since, --older-than):
// what parses is positive, and its Go form — what parseTTL sends the
// server, which reads it with time.ParseDuration — means the same
// duration; whole days and weeks are exact multiples.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"15m", "24h", "30d", "2w", "1h30m", "0s", "-1h", "3651d", "521w", "1.5h", "d", "0d", "+5d", "9223372036s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			printableBounded(t, "parseDuration", s, err)
			return
		}
		if d <= 0 {
			t.Fatalf("parseDuration(%q): got %v; want > 0", s, d)
		}
		goForm, err := parseTTL(s)
		if err != nil {
			t.Fatalf("parseTTL(%q): %v; parseDuration accepted it", s, err)
		}
		if back, err := time.ParseDuration(goForm); err != nil || back != d {
			t.Fatalf("parseTTL(%q) = %q, which the server reads as %v, %v; want %v", s, goForm, back, err, d)
		}
		if again, err := parseDuration(goForm); err != nil || again != d {
			t.Fatalf("parseDuration(%q) = %v, %v; want %v", goForm, again, err, d)
		}
		if strings.HasSuffix(s, "d") && d%(24*time.Hour) != 0 || strings.HasSuffix(s, "w") && d%(7*24*time.Hour) != 0 {
			t.Fatalf("parseDuration(%q): got %v; want whole days or weeks", s, d)
		}
	})
}

// FuzzParseSince checks --since/--until: a duration counts back from now,
// a date or RFC 3339 time is taken as given, and a refusal shows the
// input only in printable, bounded form.
func FuzzParseSince(f *testing.F) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"1h", "7d", "2026-11-01", "2026-11-01T10:00:00Z", "2026-11-01T10:00:00+05:30", "yesterday", "\x1b[2J"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now)
		if err != nil {
			printableBounded(t, "parseSince", s, err)
			return
		}
		if d, err := parseDuration(s); err == nil && !got.Equal(now.Add(-d)) {
			t.Fatalf("parseSince(%q): got %v; want %v before now", s, got, d)
		}
		if got.IsZero() {
			t.Fatalf("parseSince(%q): got the zero time and no error", s)
		}
	})
}
