package rotate_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/tokenward/tokenward/internal/rotate"
)

// A cron schedule that parses but never fires ("Feb 30") must be refused:
// robfig/cron's Next gives the zero time for it, so Policy.Next put NextAt
// in year 1 and every scheduler tick found the policy due and rotated it.
func TestCronThatNeverFiresIsRefused(t *testing.T) {
	rot := map[string]Rotator{"random": &Random{}}
	from := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		cron string
		ok   bool
	}{
		{"0 0 30 2 *", false},          // February 30
		{"0 0 31 4 *", false},          // April 31
		{"0 0 31 2,4,6,9,11 *", false}, // no 31st in any of them
		{"0 0 29 2 *", true},           // every leap year
		{"0 0 31 * *", true},           // months that have one
		{"0 3 * * 1", true},            // weekly
		{"0 0 30 2 1", true},           // day-of-month OR day-of-week: Mondays
		{"0 */4 1,15 1-6 *", true},     // steps and ranges
	}
	for _, tt := range tests {
		p := &Policy{Path: "a/b/C", Cron: tt.cron, Rotator: "random"}
		err := p.Validate(rot)
		if (err == nil) != tt.ok {
			t.Errorf("Validate(cron %q): got %v; want ok=%v", tt.cron, err, tt.ok)
		}
		if tt.ok {
			if next := p.Next(from); !next.After(from) {
				t.Errorf("Next(cron %q) from %s: got %s; want a later time", tt.cron, from, next)
			}
		}
	}
}

// Jitter delays each run of a cron schedule by a fixed offset; it must not
// skip runs. Policy.Next(from) took the next cron time after the jittered
// run itself, so a jitter longer than the gap between two cron times
// dropped the ones in between (an hourly schedule with 2h jitter ran every
// 3 hours).
func TestCronJitterSkipsNoRun(t *testing.T) {
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday
	tests := []struct {
		name   string
		cron   string
		jitter time.Duration
		period time.Duration // between two runs
	}{
		{"hourly, 7d jitter", "0 * * * *", MaxJitter, time.Hour},
		{"every 15m, 1h jitter", "*/15 * * * *", time.Hour, 15 * time.Minute},
		{"daily, 36h jitter", "0 3 * * *", 36 * time.Hour, 24 * time.Hour},
		{"daily, 1h jitter", "0 3 * * *", time.Hour, 24 * time.Hour},
		{"weekly, no jitter", "0 3 * * 1", 0, 7 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *Policy
			// Find a path whose jitter is longer than the period, the case
			// that skipped runs (when the jitter allows one).
			for i := 0; ; i++ {
				p = &Policy{Path: "a/b/S" + strings.Repeat("x", i), Cron: tt.cron, Jitter: tt.jitter}
				if tt.jitter <= tt.period || JitterFor(p.Path, p.Jitter) > tt.period || i > 50 {
					break
				}
			}
			j := JitterFor(p.Path, p.Jitter)
			// The scheduler runs a policy a little after NextAt (its tick)
			// and sets NextAt = Next(now).
			at := p.Next(start)
			for run := range 5 {
				now := at.Add(20 * time.Second)
				next := p.Next(now)
				if got := next.Sub(at); got != tt.period {
					t.Fatalf("run %d at %s (jitter %s): next at %s, %s later; want %s later", run, at, j, next, got, tt.period)
				}
				at = next
			}
		})
	}
}

// When the exec rotator's program times out, everything it started must
// stop: a helper left running holds the values it was given on stdin and
// may still change the upstream system after the step was recorded as
// failed (and retried, or rolled back). Only the direct child was killed.
func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("process groups are a unix feature")
	}
	sh, err := execLookSh()
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name   string
		script string
	}{
		{"background subshell", `(sleep 1; echo late > "$1") >/dev/null 2>&1 </dev/null & wait`},
		{"child shell", `sh -c 'sleep 1; echo late > "$0"' "$1" >/dev/null 2>&1 </dev/null; :`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "marker")
			args, _ := json.Marshal([]string{"-c", tt.script, "sh", marker})
			ex := &Exec{}
			req := &Request{RotationID: "rot_1", Path: testPath, Current: []byte("fake-current-value"),
				Config: map[string]string{"command": sh, "args": string(args), "timeout": "200ms"}}
			err := ex.Set(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), "timed out") {
				t.Fatalf("Set: got %v; want a timeout", err)
			}
			time.Sleep(1500 * time.Millisecond)
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("a process the timed-out program started kept running and wrote %s", marker)
			}
		})
	}
}

func execLookSh() (string, error) {
	for _, p := range []string{"/bin/sh", "/usr/bin/sh"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}
