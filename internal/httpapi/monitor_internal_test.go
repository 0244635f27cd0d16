package httpapi

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration // -1: error
	}{
		{"", 0},
		{"30d", 30 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"720h", 720 * time.Hour},
		{"90m", 90 * time.Minute},
		{"0d", -1},
		{"-1d", -1},
		{"3651d", -1},
		{"d", -1},
		{"-5h", -1},
		{"0s", -1},
		{"soon", -1},
	} {
		got, err := parseRetention(tc.in)
		switch {
		case tc.want == -1 && err == nil:
			t.Errorf("parseRetention(%q): got %s; want an error", tc.in, got)
		case tc.want != -1 && (err != nil || got != tc.want):
			t.Errorf("parseRetention(%q): got %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"30d", "720h", "", "0d", "1e9h", "99999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseRetention(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && len(s) > 64 {
				t.Fatal("error echoes unbounded input")
			}
			return
		}
		if d < 0 || (s != "" && d == 0) {
			t.Fatalf("parseRetention(%q) = %s; want a positive duration", s, d)
		}
	})
}

func TestIPLimiter(t *testing.T) {
	l := newIPLimiter(3, time.Minute, 2)
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		ip   string
		at   time.Duration
		want bool
	}{
		{"10.0.0.1", 0, true}, {"10.0.0.1", 1, true}, {"10.0.0.1", 2, true},
		{"10.0.0.1", 3, false},              // fourth in the window
		{"10.0.0.2", 4, true},               // another address has its own budget
		{"10.0.0.1", time.Minute, true},     // a new window
		{"10.0.0.3", time.Minute + 1, true}, // table full: forgotten, still allowed
		{"10.0.0.1", time.Minute + 2, true}, // forgetting errs on the side of reports
		{"10.0.0.1", -time.Hour, true},      // a clock step back starts a window
	} {
		if got := l.allow(tc.ip, t0.Add(tc.at)); got != tc.want {
			t.Errorf("step %d (%s at +%s): got %v; want %v", i, tc.ip, tc.at, got, tc.want)
		}
	}
	if len(l.seen) > 2 {
		t.Fatalf("got %d tracked addresses; want at most 2", len(l.seen))
	}
}
