package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/tokenward/tokenward/internal/rotate"
)

// failing is a rotator whose Create always fails.
type failing struct{ Random }

func (*failing) Create(context.Context, *Request) ([]byte, error) {
	return nil, errors.New("upstream is down")
}

func TestSchedulerRunsDuePoliciesWithJitter(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"random": &Random{}})
	start := e.clock.Now()
	paths := []string{"a/prod/ONE", "a/prod/TWO", "a/prod/THREE"}
	for _, p := range paths {
		e.mustPut(t, p, "initial")
		e.mustPolicy(t, &Policy{Path: p, Every: 30 * 24 * time.Hour, Jitter: time.Hour, Rotator: "random", NextAt: start})
	}
	s := &Scheduler{Machine: e.m, Concurrency: 2}
	tests := []struct {
		advance  time.Duration
		wantRuns int // rotations per secret so far
	}{
		{0, 1},
		{24 * time.Hour, 1},
		{30*24*time.Hour - 24*time.Hour - time.Nanosecond, 1}, // just before every+0 jitter
		{time.Hour + time.Nanosecond, 2},                      // every + max jitter: all due
	}
	for _, tt := range tests {
		e.clock.Add(tt.advance)
		if err := s.Tick(ctx); err != nil {
			t.Fatalf("Tick: %v", err)
		}
		for _, p := range paths {
			h, _ := e.store.History(ctx, p, 0)
			if len(h) != tt.wantRuns {
				t.Fatalf("at +%s: %s has %d rotations; want %d", e.clock.Now().Sub(start), p, len(h), tt.wantRuns)
			}
			if h[0].Step != StepDone {
				t.Fatalf("%s: got step %s; want done", p, h[0].Step)
			}
		}
	}
	// The next run keeps the cadence of the NextAt set above, one interval
	// on, however late the tick that ran it (TestEveryJitterDoesNotDrift).
	for _, p := range paths {
		pol, _ := e.store.Policy(ctx, p)
		want := start.Add(2 * 30 * 24 * time.Hour)
		if !pol.NextAt.Equal(want) {
			t.Fatalf("%s next: got %s; want %s", p, pol.NextAt, want)
		}
	}
}

func TestSchedulerRetriesFailuresAndKeepsCurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"down": &failing{}})
	e.m.MaxAttempts = 4
	alerts := 0
	e.m.Alert = func(context.Context, *Rotation) { alerts++ }
	e.mustPut(t, testPath, "working-value")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Rotator: "down", NextAt: e.clock.Now()})
	s := &Scheduler{Machine: e.m}
	// Backoff 1m, 2m, 4m: failures at +0, +1m, +3m, +7m.
	for i, at := range []time.Duration{0, time.Minute, 2 * time.Minute, 4 * time.Minute} {
		e.clock.Add(at)
		if err := s.Tick(ctx); err == nil {
			t.Fatalf("tick %d: got nil; want the step failure", i)
		}
		if alerts != i+1 {
			t.Fatalf("tick %d: got %d alerts; want %d", i, alerts, i+1)
		}
		if e.label(t, testPath, LabelCurrent) != "working-value" {
			t.Fatalf("tick %d: CURRENT changed; want the working value kept", i)
		}
	}
	h, _ := e.store.History(ctx, testPath, 0)
	if len(h) != 1 || h[0].Step != StepFailed || h[0].Attempt != 4 {
		t.Fatalf("history: got %d rotations, last %+v; want 1 failed after 4 attempts", len(h), h[0])
	}
	if h[0].Error == "" || e.m.Failures.Load() != 4 {
		t.Fatalf("got error %q, failures %d; want an error and 4", h[0].Error, e.m.Failures.Load())
	}
	// A tick in between backoffs does nothing.
	e.clock.Add(time.Second)
	if err := s.Tick(ctx); err != nil {
		t.Fatalf("idle tick: %v", err)
	}
	if alerts != 4 {
		t.Fatalf("idle tick: got %d alerts; want 4", alerts)
	}
}

func TestBulkRotationReportsEachSecret(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"random": &Random{}, "down": &failing{}})
	e.m.MaxAttempts = 1
	var cat catalog
	for i := range 100 {
		path := fmt.Sprintf("payments/prod/KEY_%03d", i)
		cat.add(path, "team-x", "pci")
		e.mustPut(t, path, "old")
		rot := "random"
		if i == 42 {
			rot = "down"
		}
		e.mustPolicy(t, &Policy{Path: path, Every: 30 * 24 * time.Hour, Grace: time.Hour, Rotator: rot})
	}
	cat.add("payments/dev/NO_POLICY", "team-x")
	cat.add("search/prod/OTHER", "team-y", "pci")
	b := &Bulk{Machine: e.m, Catalog: &cat, Concurrency: 8}

	plan, err := b.Plan(ctx, Selector{Owner: "team-x"})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if len(plan) != 101 || plan[0].Secret != "payments/dev/NO_POLICY" || plan[0].Action != "skip" || plan[1].Action != "rotate" {
		t.Fatalf("plan: got %d items, first %+v; want 101 with the policy-less one skipped", len(plan), plan[0])
	}
	if h, _ := e.store.History(ctx, "", 0); len(h) != 0 {
		t.Fatalf("dry run: got %d rotations; want 0", len(h))
	}

	report, err := b.Run(ctx, Selector{Scope: "payments/prod/*"}, "incident 7")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	counts := map[string]int{}
	for _, it := range report {
		counts[it.Status]++
		if it.Status == "failed" && (it.Secret != "payments/prod/KEY_042" || it.Reason == "") {
			t.Fatalf("failure: got %+v; want KEY_042 with a reason", it)
		}
	}
	if len(report) != 100 || counts["rotated"] != 99 || counts["failed"] != 1 {
		t.Fatalf("report: got %d items %v; want 100 with 99 rotated and 1 failed", len(report), counts)
	}
	if e.label(t, "payments/prod/KEY_042", LabelCurrent) != "old" || e.label(t, "payments/prod/KEY_000", LabelCurrent) == "old" {
		t.Fatalf("values: want KEY_042 unchanged and KEY_000 rotated")
	}
}

func TestSelector(t *testing.T) {
	var cat catalog
	cat.add("payments/prod/A", "team-x", "pci")
	sec := cat.secrets[0]
	tests := []struct {
		sel   Selector
		match bool
		valid bool
	}{
		{Selector{All: true}, true, true},
		{Selector{Owner: "team-x"}, true, true},
		{Selector{Owner: "team-y"}, false, true},
		{Selector{Tag: "pci"}, true, true},
		{Selector{Tag: "sox"}, false, true},
		{Selector{Scope: "payments/*/A"}, true, true},
		{Selector{Scope: "payments/dev/*"}, false, true},
		{Selector{Scope: "payments/[/*"}, false, false},
		{Selector{}, false, false},
		{Selector{All: true, Owner: "x"}, true, false},
	}
	for _, tt := range tests {
		if err := tt.sel.Validate(); (err == nil) != tt.valid {
			t.Errorf("%+v Validate: got %v; want valid=%v", tt.sel, err, tt.valid)
		}
		if tt.valid && tt.sel.Match(sec) != tt.match {
			t.Errorf("%+v Match: got %v; want %v", tt.sel, !tt.match, tt.match)
		}
	}
}

// pausedDue is a Store whose DuePolicies reports that it has read, then
// waits to be let go: a scheduler paused between reading its due policies
// and claiming them, as an old leader is while a new one ticks.
type pausedDue struct {
	Store
	read, resume chan struct{}
}

func (s *pausedDue) DuePolicies(ctx context.Context, now time.Time) ([]*Policy, error) {
	due, err := s.Store.DuePolicies(ctx, now)
	s.read <- struct{}{}
	<-s.resume
	return due, err
}

// TestSchedulerClaimsADueRunOnce: two schedulers (the old leader's and the
// new one's) tick the same due policy against one store. The first reads
// it and pauses; the second claims it and runs the rotation to the end (no
// grace, so nothing is in flight when the first goes on). The first then
// finds the run claimed and starts nothing: one rotation, not two.
func TestSchedulerClaimsADueRunOnce(t *testing.T) {
	ctx := t.Context()
	rotators := map[string]Rotator{"random": &Random{}}
	e := newEnv(t, rotators)
	e.mustPut(t, testPath, "initial")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Rotator: "random", NextAt: e.clock.Now()})

	paused := &pausedDue{Store: e.store, read: make(chan struct{}), resume: make(chan struct{})}
	old := NewMachine(paused, e.secrets, rotators)
	old.Now, old.Logger = e.clock.Now, e.m.Logger
	oldTick := make(chan error, 1)
	go func() { oldTick <- (&Scheduler{Machine: old}).Tick(ctx) }()
	<-paused.read // the old leader has read the policy as due

	if err := (&Scheduler{Machine: e.m}).Tick(ctx); err != nil {
		t.Fatalf("new leader's tick: %v", err)
	}
	h, err := e.store.History(ctx, testPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].Step != StepDone {
		t.Fatalf("after the new leader's tick: got %d rotations; want 1 done", len(h))
	}
	close(paused.resume)
	if err := <-oldTick; err != nil {
		t.Fatalf("old leader's tick: %v", err)
	}
	if h, err = e.store.History(ctx, testPath, 0); err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 {
		t.Fatalf("rotations of one due run by two schedulers: got %d; want 1", len(h))
	}
	p, err := e.store.Policy(ctx, testPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(24 * time.Hour); !p.NextAt.Equal(want) {
		t.Errorf("next run: got %s; want %s", p.NextAt, want)
	}
}
