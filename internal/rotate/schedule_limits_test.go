package rotate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/tokenward/tokenward/internal/rotate"
)

// A cron schedule may not run rotations more often than an every schedule
// may (MinEvery), nor so often that a run falls due while the last
// rotation is still in its grace period (that run would be skipped): each
// rotation mints a new upstream credential, and "* * * * *" was accepted.
func TestCronMinimumInterval(t *testing.T) {
	rot := map[string]Rotator{"random": &Random{}}
	tests := []struct {
		name  string
		cron  string
		every time.Duration
		grace time.Duration
		want  string // "" when valid
	}{
		{"every minute", "* * * * *", 0, 0, "fires as often as every 1m"},
		{"every 15 minutes", "*/15 * * * *", 0, 0, "fires as often as every 15m"},
		{"two minutes an hour", "0,59 3 * * *", 0, 0, "fires as often as every 59m"},
		{"hourly", "0 * * * *", 0, 0, ""},
		{"hourly, grace 1h", "0 * * * *", 0, time.Hour, "grace"},
		{"hourly, grace 59m", "0 * * * *", 0, 59 * time.Minute, ""},
		{"twice an hour at night", "0,30 2 * * *", 0, 0, "fires as often as every 30m"},
		{"across midnight, grace 2h", "0 0,23 * * *", 0, 2 * time.Hour, "(1h)"},
		{"daily, grace 1d", "0 3 * * *", 0, 24 * time.Hour, "grace"},
		{"Mondays and Tuesdays, grace 2d", "0 3 * * 1,2", 0, 48 * time.Hour, "grace"},
		{"Mondays and Wednesdays, grace 47h", "0 3 * * 1,3", 0, 47 * time.Hour, ""},
		{"weekly, grace 6d", "0 3 * * 1", 0, 6 * 24 * time.Hour, ""},
		{"1st and 31st, grace 2d", "0 3 1,31 * *", 0, 48 * time.Hour, "grace"}, // the 31st and the next 1st
		{"leap day, grace 90d", "0 0 29 2 *", 0, MaxGrace, ""},
		{"time zone", "TZ=Europe/Paris 0 3 * * 1", 0, 0, "5-field"},
		{"descriptor", "@hourly", 0, 0, "5-field"},
		{"every 1d, grace 1d", "", 24 * time.Hour, 24 * time.Hour, "grace"},
		{"every 1d, grace 23h", "", 24 * time.Hour, 23 * time.Hour, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{Path: "a/b/C", Cron: tt.cron, Every: tt.every, Grace: tt.grace, Rotator: "random"}
			err := p.Validate(rot)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: got %v; want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: got %v; want an error with %q", err, tt.want)
			}
		})
	}
}

// An every schedule's jitter shifts a fixed cadence: run k is due at
// start + k*every + jitter. The scheduler set NextAt = Next(now) after each
// run, now being the jittered (and a tick late) run itself, so each run
// came jitter (plus a tick) later than the one before and the interval
// between runs was every + jitter.
func TestEveryJitterDoesNotDrift(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"random": &Random{}})
	const every, jitter = 24 * time.Hour, 6 * time.Hour
	path := "a/prod/DRIFT"
	// A path whose offset is large enough to show the drift.
	for i := 0; JitterFor(path, jitter) < time.Hour; i++ {
		path = "a/prod/DRIFT" + strings.Repeat("X", i)
	}
	e.mustPut(t, path, "initial")
	start := e.clock.Now()
	p := &Policy{Path: path, Every: every, Jitter: jitter, Rotator: "random"}
	p.NextAt = p.Next(start) // as core does when the policy is set
	e.mustPolicy(t, p)
	first := p.NextAt
	s := &Scheduler{Machine: e.m, Concurrency: 1}
	for run := range 5 {
		pol, err := e.store.Policy(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		want := first.Add(time.Duration(run) * every)
		if !pol.NextAt.Equal(want) {
			t.Fatalf("before run %d: NextAt got %s; want %s (start %s, jitter %s)", run, pol.NextAt, want, start, JitterFor(path, jitter))
		}
		// The scheduler ticks a little after the time is due.
		e.clock.Add(pol.NextAt.Sub(e.clock.Now()) + 20*time.Second)
		if err := s.Tick(ctx); err != nil {
			t.Fatalf("Tick: %v", err)
		}
	}
	// A server down for several intervals runs once, then goes on with the
	// same cadence rather than running each missed one.
	pol, _ := e.store.Policy(ctx, path)
	e.clock.Add(pol.NextAt.Sub(e.clock.Now()) + 3*every + time.Hour)
	if err := s.Tick(ctx); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	pol, _ = e.store.Policy(ctx, path)
	if want := first.Add(9 * every); !pol.NextAt.Equal(want) {
		t.Fatalf("after downtime: NextAt got %s; want %s", pol.NextAt, want)
	}
}
