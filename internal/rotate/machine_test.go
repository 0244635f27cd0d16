package rotate_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	. "github.com/tokenward/tokenward/internal/rotate"
)

const testPath = "payments/prod/API_KEY"

func TestRotateNowStagesLabelsAndRevokesAfterGrace(t *testing.T) {
	ctx := context.Background()
	up := newUpstream("v1-value")
	e := newEnv(t, map[string]Rotator{"up": up})
	e.mustPut(t, testPath, "v1-value")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 30 * 24 * time.Hour, Grace: 24 * time.Hour, Rotator: "up"})

	r, err := e.m.RotateNow(ctx, testPath, "manual")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	if r.Step != StepRevoke {
		t.Fatalf("step after RotateNow: got %s; want %s (waiting for grace)", r.Step, StepRevoke)
	}
	cur, prev := e.label(t, testPath, LabelCurrent), e.label(t, testPath, LabelPrevious)
	if cur == "v1-value" || cur == "" || prev != "v1-value" || e.label(t, testPath, LabelPending) != "" {
		t.Fatalf("labels: got CURRENT=%q PREVIOUS=%q; want a new CURRENT and PREVIOUS=v1-value, no PENDING", cur, prev)
	}
	if !up.accepts(cur) || !up.accepts("v1-value") {
		t.Fatalf("during grace: got accepts(new)=%v accepts(old)=%v; want both", up.accepts(cur), up.accepts("v1-value"))
	}

	tests := []struct {
		advance  time.Duration
		wantStep Step
		oldWorks bool
	}{
		{23 * time.Hour, StepRevoke, true},
		{time.Hour - time.Nanosecond, StepRevoke, true},
		{time.Nanosecond, StepDone, false},
	}
	for _, tt := range tests {
		e.clock.Add(tt.advance)
		if err := e.m.Resume(ctx); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		got, _ := e.store.Rotation(ctx, r.ID)
		if got.Step != tt.wantStep || up.accepts("v1-value") != tt.oldWorks {
			t.Fatalf("at %s: got step %s, old works %v; want %s, %v", e.clock.Now(), got.Step, up.accepts("v1-value"), tt.wantStep, tt.oldWorks)
		}
	}
	if prev := e.label(t, testPath, LabelPrevious); prev != "" {
		t.Fatalf("PREVIOUS after revoke: got %q; want none", prev)
	}
	if got := e.label(t, testPath, LabelCurrent); got != cur {
		t.Fatalf("CURRENT after revoke: got %q; want %q", got, cur)
	}
}

func TestCrashAfterEachStepResumesConsistently(t *testing.T) {
	points := []string{
		"create:made", "create:done", "create:recorded",
		"set:done", "set:recorded",
		"test:done", "test:recorded",
		"finish:done", "finish:recorded",
		"revoke:revoked", "revoke:done", "revoke:recorded",
	}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			ctx := context.Background()
			up := newUpstream("v1-value")
			rotators := map[string]Rotator{"up": up}
			e := newEnv(t, rotators)
			e.mustPut(t, testPath, "v1-value")
			e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "up"})
			e.m.SetCrash(func(p string) bool { return p == point })

			r, err := e.m.RotateNow(ctx, testPath, "manual")
			if strings.HasPrefix(point, "revoke") {
				// revoke runs after grace: get there first
				if err != nil {
					t.Fatalf("RotateNow: %v", err)
				}
				e.clock.Add(time.Hour)
				r, err = e.m.Advance(ctx, r.ID)
			}
			if !errors.Is(err, ErrCrashed) {
				t.Fatalf("run to crash point: got err %v; want the crash", err)
			}
			// The working value must work at the crash.
			if cur := e.label(t, testPath, LabelCurrent); !up.accepts(cur) {
				t.Fatalf("after crash at %s: CURRENT %q is not accepted upstream", point, cur)
			}
			// A fresh machine over the same file, as after a restart.
			e.restart(t, rotators)
			if err := e.m.Resume(ctx); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			if cur := e.label(t, testPath, LabelCurrent); !up.accepts(cur) {
				t.Fatalf("after resume: CURRENT %q is not accepted upstream", cur)
			}
			e.clock.Add(time.Hour)
			if err := e.m.Resume(ctx); err != nil {
				t.Fatalf("Resume after grace: %v", err)
			}
			got, err := e.store.Rotation(ctx, r.ID)
			if err != nil || got.Step != StepDone {
				t.Fatalf("rotation after resume: got %+v, %v; want step done", got, err)
			}
			cur := e.label(t, testPath, LabelCurrent)
			if cur == "v1-value" || !up.accepts(cur) || up.accepts("v1-value") {
				t.Fatalf("final: got CURRENT %q (accepted %v), old accepted %v; want a new accepted CURRENT and the old revoked",
					cur, up.accepts(cur), up.accepts("v1-value"))
			}
			if l := e.label(t, testPath, LabelPending) + e.label(t, testPath, LabelPrevious); l != "" {
				t.Fatalf("final: got leftover PENDING/PREVIOUS %q; want none", l)
			}
			hist, _ := e.store.History(ctx, testPath, 0)
			if len(hist) != 1 {
				t.Fatalf("history: got %d rotations; want 1", len(hist))
			}
			// Only a crash between making a value and storing it may make a second one.
			wantCreates := 1
			if point == "create:made" {
				wantCreates = 2
			}
			if up.creates != wantCreates {
				t.Fatalf("upstream creates: got %d; want %d", up.creates, wantCreates)
			}
		})
	}
}

func TestFailedTestRetriesWithBackoffThenRollsBack(t *testing.T) {
	ctx := context.Background()
	up := newUpstream("v1-value")
	up.failTest = true
	e := newEnv(t, map[string]Rotator{"up": up})
	e.m.MaxAttempts = 3
	var alerts []string
	e.m.Alert = func(_ context.Context, r *Rotation) { alerts = append(alerts, r.Error) }
	e.mustPut(t, testPath, "v1-value")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Rotator: "up"})

	r, err := e.m.RotateNow(ctx, testPath, "manual")
	if err == nil || r.Step != StepTest || r.Attempt != 1 {
		t.Fatalf("first try: got step %s attempt %d err %v; want test, 1, an error", r.Step, r.Attempt, err)
	}
	steps := []struct {
		advance     time.Duration
		wantStep    Step
		wantAttempt int
	}{
		{30 * time.Second, StepTest, 1}, // backoff not over: nothing runs
		{30 * time.Second, StepTest, 2}, // 1m after the first failure
		{time.Minute, StepTest, 2},      // backoff doubled to 2m
		{time.Minute, StepFailed, 3},
	}
	for _, s := range steps {
		e.clock.Add(s.advance)
		got, _ := e.m.Advance(ctx, r.ID)
		if got.Step != s.wantStep || got.Attempt != s.wantAttempt {
			t.Fatalf("at +%s: got step %s attempt %d; want %s %d", s.advance, got.Step, got.Attempt, s.wantStep, s.wantAttempt)
		}
	}
	if cur := e.label(t, testPath, LabelCurrent); cur != "v1-value" {
		t.Fatalf("CURRENT after rollback: got %q; want v1-value", cur)
	}
	if p := e.label(t, testPath, LabelPending); p != "" {
		t.Fatalf("PENDING after rollback: got %q; want none", p)
	}
	if up.discards != 1 || len(alerts) != 3 || e.m.Failures.Load() != 3 {
		t.Fatalf("got discards %d, alerts %d, failures %d; want 1, 3, 3", up.discards, len(alerts), e.m.Failures.Load())
	}
	// The slot is free again.
	if _, err := e.m.Start(ctx, &Policy{Path: testPath, Every: 24 * time.Hour, Rotator: "up"}, "manual"); err != nil {
		t.Fatalf("Start after failure: %v", err)
	}
}

func TestConcurrentRotateNowRunsExactlyOneRotation(t *testing.T) {
	ctx := context.Background()
	up := newUpstream("v1-value")
	e := newEnv(t, map[string]Rotator{"up": up})
	e.mustPut(t, testPath, "v1-value")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "up"})

	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = e.m.RotateNow(ctx, testPath, "manual") })
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrInFlight) && tokenward.ErrorCode(err) == tokenward.ECONFLICT:
			conflicts++
		default:
			t.Fatalf("RotateNow: unexpected error %v", err)
		}
	}
	hist, _ := e.store.History(ctx, testPath, 0)
	if ok != 1 || conflicts != n-1 || len(hist) != 1 || up.creates != 1 {
		t.Fatalf("got %d ok, %d conflicts, %d rotations, %d creates; want 1, %d, 1, 1", ok, conflicts, len(hist), up.creates, n-1)
	}
}

func TestRotateNowWithoutPolicyIsNotFound(t *testing.T) {
	e := newEnv(t, map[string]Rotator{"up": newUpstream()})
	_, err := e.m.RotateNow(context.Background(), testPath, "manual")
	if got := tokenward.ErrorCode(err); got != tokenward.ENOTFOUND {
		t.Fatalf("got code %q; want %q", got, tokenward.ENOTFOUND)
	}
}

func TestStaleUpdateIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"up": newUpstream()})
	r, err := e.m.Start(ctx, &Policy{Path: testPath, Every: 24 * time.Hour, Rotator: "up"}, "manual")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := e.store.Rotation(ctx, r.ID)
	b, _ := e.store.Rotation(ctx, r.ID)
	a.Step = StepSet
	if err := e.store.UpdateRotation(ctx, a); err != nil {
		t.Fatalf("first update: %v", err)
	}
	b.Step = StepFailed
	if err := e.store.UpdateRotation(ctx, b); !errors.Is(err, ErrStale) {
		t.Fatalf("stale update: got %v; want ErrStale", err)
	}
}

func TestRollbackWithinGraceNeverRevokesTheRestoredValue(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "clean", true: "crash after restore"}[crash], func(t *testing.T) {
			ctx := context.Background()
			up := newUpstream("v1-value")
			rotators := map[string]Rotator{"up": up}
			e := newEnv(t, rotators)
			e.mustPut(t, testPath, "v1-value")
			e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "up"})
			if _, err := e.m.Rollback(ctx, testPath); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
				t.Fatalf("Rollback with nothing to roll back: got %v; want not found", err)
			}
			r, err := e.m.RotateNow(ctx, testPath, "manual")
			if err != nil {
				t.Fatal(err)
			}
			newValue := e.label(t, testPath, LabelCurrent)
			if crash {
				e.m.SetCrash(func(p string) bool { return p == "rollback:restored" })
			}
			_, err = e.m.Rollback(ctx, testPath)
			if crash != errors.Is(err, ErrCrashed) || (!crash && err != nil) {
				t.Fatalf("Rollback: got %v; want crashed=%v", err, crash)
			}
			if crash {
				e.restart(t, rotators)
			}
			e.clock.Add(time.Hour)
			if err := e.m.Resume(ctx); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			got, _ := e.store.Rotation(ctx, r.ID)
			if cur := e.label(t, testPath, LabelCurrent); cur != "v1-value" || !up.accepts("v1-value") {
				t.Fatalf("after rollback and grace: got CURRENT %q, accepted %v; want v1-value still working", cur, up.accepts("v1-value"))
			}
			if got.Step != StepFailed || up.accepts(newValue) || up.discards != 1 {
				t.Fatalf("got step %s, new value accepted %v, discards %d; want failed, false, 1", got.Step, up.accepts(newValue), up.discards)
			}
		})
	}
}

func TestFinishRefusesWhenCurrentChangedDuringRotation(t *testing.T) {
	ctx := context.Background()
	up := newUpstream("v1-value")
	e := newEnv(t, map[string]Rotator{"up": up})
	e.mustPut(t, testPath, "v1-value")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "up"})
	e.m.SetCrash(func(p string) bool { return p == "test:recorded" })
	r, err := e.m.RotateNow(ctx, testPath, "manual")
	if !errors.Is(err, ErrCrashed) {
		t.Fatalf("RotateNow: got %v; want a stop before finish", err)
	}
	e.m.SetCrash(nil)
	// A person sets the secret by hand meanwhile.
	e.mustPut(t, testPath, "hand-set")
	r, err = e.m.Advance(ctx, r.ID)
	// A retry would find the same: it ends at once, rolled back.
	if err == nil || r.Step != StepFailed || r.Attempt != 1 || !strings.HasSuffix(r.Error, "(attempt 1, permanent: not retried)") {
		t.Fatalf("Advance: got %v, step %s, attempt %d (%s); want a permanent failure at the first attempt", err, r.Step, r.Attempt, r.Error)
	}
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Fatalf("Advance: got code %s; want %s", tokenward.ErrorCode(err), tokenward.ECONFLICT)
	}
	if cur, p := e.label(t, testPath, LabelCurrent), e.label(t, testPath, LabelPending); cur != "hand-set" || p != "" || up.discards != 1 {
		t.Fatalf("got CURRENT %q, PENDING %q, %d discards; want the hand-set value kept, the pending one dropped and discarded", cur, p, up.discards)
	}
}

func TestFailedRotationErrorsDoNotHoldValues(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"down": &failing{}})
	e.m.MaxAttempts = 1
	e.mustPut(t, testPath, "canary-value-xyz")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Rotator: "down"})
	r, err := e.m.RotateNow(ctx, testPath, "manual")
	if err == nil || r.Step != StepFailed {
		t.Fatalf("got %v, step %s; want a failure", err, r.Step)
	}
	for _, s := range []string{err.Error(), r.Error, e.logs.String()} {
		if strings.Contains(s, "canary-value-xyz") {
			t.Fatalf("a value leaked into %q", s)
		}
	}
}

// TestRotatedValuesAreSealedAtRest: neither the value a rotation made nor
// the one it replaced is in the database file or its WAL in plaintext.
func TestRotatedValuesAreSealedAtRest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"random": &Random{}})
	const old = "plaintext-canary-3f9a1c77"
	e.mustPut(t, testPath, old)
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "random"})
	if _, err := e.m.RotateNow(ctx, testPath, "manual"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	cur := e.label(t, testPath, LabelCurrent)
	if cur == "" || cur == old || e.label(t, testPath, LabelPrevious) != old {
		t.Fatalf("labels: got a CURRENT equal to the old value or no PREVIOUS; want a new CURRENT and the old as PREVIOUS")
	}
	e.db.Close()
	for _, f := range []string{e.file, e.file + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, v := range []string{old, cur} {
			if bytes.Contains(b, []byte(v)) {
				t.Fatalf("%s holds a value in plaintext", filepath.Base(f))
			}
		}
	}
}
