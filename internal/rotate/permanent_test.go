package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	. "github.com/tokenward/tokenward/internal/rotate"
)

// scripted is an upstream whose Test and Revoke first fail with the errors
// queued for them, then work.
type scripted struct {
	*upstream
	mu         sync.Mutex
	testErrs   []error
	revokeErrs []error
}

func next(mu *sync.Mutex, errs *[]error) error {
	mu.Lock()
	defer mu.Unlock()
	if len(*errs) == 0 {
		return nil
	}
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

func (s *scripted) Test(ctx context.Context, req *Request) error {
	if err := next(&s.mu, &s.testErrs); err != nil {
		return err
	}
	return s.upstream.Test(ctx, req)
}

func (s *scripted) Revoke(ctx context.Context, req *Request) error {
	if err := next(&s.mu, &s.revokeErrs); err != nil {
		return err
	}
	return s.upstream.Revoke(ctx, req)
}

func TestPermanentAndIsPermanent(t *testing.T) {
	base := tokenward.Errorf(tokenward.EINVALID, "no such role")
	p := Permanent(base)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", p, true},
		{"marked, then wrapped", fmt.Errorf("revoke previous: %w", p), true},
		{"joined", errors.Join(errors.New("other"), p), true},
		{"its message only, not wrapped", errors.New(p.Error()), false},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent(%v): got %v; want %v", tt.name, tt.err, got, tt.want)
		}
	}
	if Permanent(nil) != nil {
		t.Errorf("Permanent(nil): got non-nil; want nil")
	}
	// The mark changes neither the message nor the code.
	if p.Error() != base.Error() || tokenward.ErrorCode(p) != tokenward.EINVALID || !errors.Is(p, base) {
		t.Errorf("Permanent(err): got %q, code %s; want err's message and code", p, tokenward.ErrorCode(p))
	}
}

// A permanent failure ends the rotation at its first attempt, with one
// alert, exactly as the last of MaxAttempts would: rolled back before
// finish, ended at revoke with the old value still valid. A transient one
// is still retried.
func TestPermanentFailureEndsTheRotationAtOnce(t *testing.T) {
	refused := func() error { return Permanent(errors.New("upstream refuses this value for good")) }
	down := func() error { return errors.New("upstream is down") }
	tests := []struct {
		name       string
		testErrs   []error // the test step's failures, in order
		revokeErrs []error
		// first: the step after the first failure; then: the step and
		// attempt after the next run due (a retry, had there been one)
		first, then Step
		thenAttempt int
		alerts      int
		permanent   bool // the rotation ended permanent
		wantNew     bool // the new value is CURRENT
	}{
		{"permanent at test: rolled back", []error{refused()}, nil, StepFailed, StepFailed, 1, 1, true, false},
		{"permanent, wrapped, at test", []error{fmt.Errorf("check: %w", refused())}, nil, StepFailed, StepFailed, 1, 1, true, false},
		{"transient then permanent at test", []error{down(), refused()}, nil, StepTest, StepFailed, 2, 2, true, false},
		{"transient at test: retried", []error{down()}, nil, StepTest, StepRevoke, 0, 1, false, true},
		{"permanent at revoke: ended, old value valid", nil, []error{refused()}, StepFailed, StepFailed, 1, 1, true, true},
		{"transient at revoke: retried", nil, []error{down()}, StepRevoke, StepDone, 0, 1, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			up := &scripted{upstream: newUpstream("v1-value"), testErrs: tt.testErrs, revokeErrs: tt.revokeErrs}
			e := newEnv(t, map[string]Rotator{"up": up})
			var alerts []Rotation
			e.m.Alert = func(_ context.Context, r *Rotation) { alerts = append(alerts, *r) }
			e.mustPut(t, testPath, "v1-value")
			e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "up"})

			r, _ := e.m.RotateNow(ctx, testPath, "manual")
			if r.Step == StepRevoke && r.Attempt == 0 {
				e.clock.Add(time.Hour) // grace
				r, _ = e.m.Advance(ctx, r.ID)
			}
			if r.Step != tt.first || r.Attempt != 1 || len(alerts) != 1 {
				t.Fatalf("first failure: got step %s attempt %d, %d alerts (%s); want %s, 1, 1", r.Step, r.Attempt, len(alerts), r.Error, tt.first)
			}
			if permanent := r.Step == StepFailed; permanent {
				const want = "upstream refuses this value for good (attempt 1, permanent: not retried)"
				if !strings.HasSuffix(r.Error, want) || alerts[0].Error != r.Error || alerts[0].Step != StepFailed || !r.NextAt.IsZero() || r.FinishedAt.IsZero() {
					t.Fatalf("got error %q, alert %q at step %s, next %v, finished %v; want both ending %q, failed, ended, no retry",
						r.Error, alerts[0].Error, alerts[0].Step, r.NextAt, r.FinishedAt, want)
				}
			} else if strings.Contains(r.Error, "permanent") || r.NextAt.IsZero() {
				t.Fatalf("got error %q, next %v; want a transient failure with a retry time", r.Error, r.NextAt)
			}

			// The retry would be due (backoff 1m); grace is not over.
			e.clock.Add(30 * time.Minute)
			if err := e.m.Resume(ctx); err != nil && !tt.permanent {
				t.Fatalf("Resume: %v", err)
			}
			got, err := e.store.Rotation(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Step != tt.then || got.Attempt != tt.thenAttempt || len(alerts) != tt.alerts || e.m.Failures.Load() != int64(tt.alerts) {
				t.Fatalf("then: got step %s attempt %d, %d alerts, %d failures (%s); want %s %d, %d", got.Step, got.Attempt, len(alerts),
					e.m.Failures.Load(), got.Error, tt.then, tt.thenAttempt, tt.alerts)
			}
			if tt.permanent && (!strings.HasSuffix(got.Error, "permanent: not retried)") || alerts[len(alerts)-1].Error != got.Error) {
				t.Fatalf("got error %q, last alert %q; want both to say permanent", got.Error, alerts[len(alerts)-1].Error)
			}

			cur := e.label(t, testPath, LabelCurrent)
			if isNew := cur != "v1-value"; isNew != tt.wantNew || !up.accepts(cur) {
				t.Fatalf("got CURRENT %q (accepted %v); want new=%v and accepted", cur, up.accepts(cur), tt.wantNew)
			}
			// Rolled back: PENDING dropped and discarded upstream. Ended at
			// revoke: the old value PREVIOUS and still valid, never revoked.
			wantDiscards, wantPrevious, wantOld := 0, false, true
			switch {
			case tt.permanent && !tt.wantNew:
				wantDiscards = 1
			case tt.permanent:
				wantPrevious = true
			case tt.then == StepRevoke:
				wantPrevious = true // in grace
			case tt.then == StepDone:
				wantOld = false
			}
			if up.discards != wantDiscards || e.label(t, testPath, LabelPending) != "" ||
				(e.label(t, testPath, LabelPrevious) == "v1-value") != wantPrevious || up.accepts("v1-value") != wantOld {
				t.Fatalf("got %d discards, PENDING %q, PREVIOUS %q, old accepted %v; want %d discards, no PENDING, PREVIOUS v1-value %v, old accepted %v",
					up.discards, e.label(t, testPath, LabelPending), e.label(t, testPath, LabelPrevious), up.accepts("v1-value"),
					wantDiscards, wantPrevious, wantOld)
			}
		})
	}
}
