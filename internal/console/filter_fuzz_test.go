package console

import (
	"maps"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"", "", ""},
		{"  action:secret.*   outcome:denied ", "action:secret.* outcome:denied", ""},
		{"token:ci resource:payments/prod/*", "resource:payments/prod/* token:ci", ""},
		{"since:2026-11-22T10:00:00Z", "since:2026-11-22T10:00:00Z", ""},
		{"resource:a:b", "resource:a:b", ""}, // the value runs to the next space
		{"secret", "", "is not key:value"},
		{"colour:red", "", "unknown filter key"},
		{"action:", "", "needs a value"},
		{"action:a action:b", "", "given twice"},
		{strings.Repeat("a", maxFilterLen+1), "", "longer than"},
		{"action:\xff", "", "not valid UTF-8"},
	} {
		f, err := parseFilter(tc.in, auditKeys)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseFilter(%q): got %v; want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseFilter(%q): %v", tc.in, err)
			continue
		}
		if got := f.String(); got != tc.want {
			t.Errorf("parseFilter(%q).String(): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseFilter: whatever parses has a canonical form that parses to the
// same filter, and prints the same again.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "action:secret.* outcome:denied", "token:ci  resource:a:b", "x", "action:a action:b", "since:2026-11-22T10:00:00Z", "resource:\u00e9\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		p, err := parseFilter(q, auditKeys)
		if err != nil {
			return
		}
		s := p.String()
		again, err := parseFilter(s, auditKeys)
		if err != nil {
			t.Fatalf("the canonical form %q of %q does not parse: %v", s, q, err)
		}
		if !maps.Equal(p, again) || again.String() != s {
			t.Fatalf("round trip of %q: got %v (%q); want %v (%q)", q, again, again.String(), p, s)
		}
	})
}
