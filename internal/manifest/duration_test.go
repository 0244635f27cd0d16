package manifest

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"30d", 30 * Day},
		{"12h", 12 * time.Hour},
		{"2w", 2 * Week},
		{"15m", 15 * time.Minute},
		{"90s", 90 * time.Second},
		{"1d12h", Day + 12*time.Hour},
		{"12h1d", Day + 12*time.Hour},
		{"0s", 0},
		{"007d", 7 * Day},
		{"1w1d1h1m1s", Week + Day + time.Hour + time.Minute + time.Second},
		{"15250w", 15250 * Week},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err != nil {
				t.Fatalf("ParseDuration(%q): got error %v; want %v", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q): got %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "empty"},
		{"30", "missing a unit"},
		{"d", "start each part with a number"},
		{"-1d", "start each part with a number"},
		{"+1d", "start each part with a number"},
		{"1.5d", "unknown unit"},
		{"1 d", "unknown unit"},
		{"1D", "unknown unit"},
		{"1ms", "start each part with a number"}, // "1m" then "s" with no number
		{"3x", "unknown unit"},
		{"1y", "unknown unit"},
		{"15251w", "too large"},
		{"99999999999999999999s", "too large"},
		{"15250w15250w", "too large"},
		{strings.Repeat("1d", 17), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseDuration(tt.in)
			if err == nil {
				t.Fatalf("ParseDuration(%q): got no error; want %q", tt.in, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseDuration(%q): got %q; want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Hour, "0s"},
		{500 * time.Millisecond, "0s"},
		{30 * Day, "30d"},
		{14 * Day, "2w"},
		{Day + 12*time.Hour, "1d12h"},
		{90 * time.Second, "1m30s"},
		{time.Hour + 500*time.Millisecond, "1h"},
		{15 * time.Minute, "15m"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v): got %q; want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "12h", "2w", "1d12h", "0s", "15250w", "99999999999999999999s", "1.5d", "-1d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			// Errors never echo the input: a value may land in a
			// duration field by mistake.
			// (The fixed examples in a message, " 12h" of "like 30d,
			// 12h, 2w", are no echo.)
			msg := strings.ReplaceAll(err.Error(), "(like 30d, 12h, 2w)", "")
			if len(s) >= 4 && strings.Contains(msg, s) {
				t.Fatalf("error %q echoes the input %q", err, s)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q): got %v; want >= 0", s, d)
		}
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Fatalf("ParseDuration(FormatDuration(%v)) = %v, %v; want %v", d, back, err, d)
		}
	})
}
