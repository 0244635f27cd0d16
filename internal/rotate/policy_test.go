package rotate

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30d", 30 * day, false},
		{"2w", 14 * day, false},
		{"1h", time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"", 0, true},
		{"d", 0, true},
		{"-1d", 0, true},
		{"+1d", 0, true},
		{"-1h", 0, true},
		{"1.5d", 0, true},
		{"40000d", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q): got %s, %v; want %s, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "2w", "1h30m", "-1d", "9999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q): got negative %s", s, d)
		}
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Fatalf("round trip of %q: got %s, %v; want %s", s, back, err, d)
		}
	})
}

func TestPolicyValidate(t *testing.T) {
	rot := map[string]Rotator{"random": &Random{}}
	tests := []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"every", Policy{Path: "a/b/C", Every: 30 * 24 * time.Hour, Rotator: "random"}, true},
		{"cron", Policy{Path: "a/b/C", Cron: "0 3 * * 1", Rotator: "random"}, true},
		{"both", Policy{Path: "a/b/C", Every: time.Hour, Cron: "0 3 * * 1", Rotator: "random"}, false},
		{"neither", Policy{Path: "a/b/C", Rotator: "random"}, false},
		{"too often", Policy{Path: "a/b/C", Every: time.Minute, Rotator: "random"}, false},
		{"bad cron", Policy{Path: "a/b/C", Cron: "0 3 * *", Rotator: "random"}, false},
		{"seconds cron", Policy{Path: "a/b/C", Cron: "0 0 3 * * 1", Rotator: "random"}, false},
		{"negative grace", Policy{Path: "a/b/C", Every: time.Hour, Grace: -time.Hour, Rotator: "random"}, false},
		{"unknown rotator", Policy{Path: "a/b/C", Every: time.Hour, Rotator: "nope"}, false},
		{"bad rotator config", Policy{Path: "a/b/C", Every: time.Hour, Rotator: "random", Config: map[string]string{"length": "x"}}, false},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(rot); (err == nil) != tt.ok {
			t.Errorf("%s: got %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestPolicyNextWithJitter(t *testing.T) {
	from := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday
	tests := []struct {
		name string
		p    Policy
		base time.Time
	}{
		{"every", Policy{Path: "a/b/C", Every: 30 * 24 * time.Hour}, from.Add(30 * 24 * time.Hour)},
		{"cron", Policy{Path: "a/b/C", Cron: "0 3 * * 1"}, time.Date(2026, 3, 9, 3, 0, 0, 0, time.UTC)},
		{"every with jitter", Policy{Path: "a/b/C", Every: 24 * time.Hour, Jitter: time.Hour}, from.Add(24 * time.Hour)},
	}
	for _, tt := range tests {
		got := tt.p.Next(from)
		j := got.Sub(tt.base)
		if j < 0 || (j >= tt.p.Jitter && tt.p.Jitter > 0) || (tt.p.Jitter == 0 && j != 0) {
			t.Errorf("%s: got %s; want %s plus jitter in [0, %s)", tt.name, got, tt.base, tt.p.Jitter)
		}
		if again := tt.p.Next(from); !again.Equal(got) {
			t.Errorf("%s: jitter not deterministic: got %s then %s", tt.name, got, again)
		}
	}
	// Different secrets spread out.
	seen := map[time.Duration]bool{}
	for _, p := range []string{"a/b/A", "a/b/B", "a/b/C", "a/b/D", "a/b/E"} {
		seen[JitterFor(p, time.Hour)] = true
	}
	if len(seen) < 4 {
		t.Errorf("jitter of 5 secrets: got %d distinct offsets; want them spread", len(seen))
	}
}
