package core_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/rotate"
)

// fakeUpstream is a system that checks credentials: the values it
// accepts, and every call rotation made to it.
type fakeUpstream struct {
	mu       sync.Mutex
	n        int
	accepted map[string]bool
	calls    []string // "create path", "revoke path", "discard path"
	failTest map[string]bool
}

func (u *fakeUpstream) Validate(map[string]string) error { return nil }

func (u *fakeUpstream) Create(_ context.Context, req *rotate.Request) ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	u.calls = append(u.calls, "create "+req.Path)
	return []byte(strings.Repeat("v", u.n) + "-rotated-value"), nil
}

func (u *fakeUpstream) Set(_ context.Context, req *rotate.Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.accepted[string(req.Pending)] = true
	return nil
}

func (u *fakeUpstream) Test(_ context.Context, req *rotate.Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failTest[req.Path] {
		return errors.New("upstream is slow to accept the new value")
	}
	return nil
}

func (u *fakeUpstream) Revoke(_ context.Context, req *rotate.Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, "revoke "+req.Path)
	delete(u.accepted, string(req.Current))
	return nil
}

func (u *fakeUpstream) Discard(_ context.Context, req *rotate.Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, "discard "+req.Path)
	delete(u.accepted, string(req.Pending))
	return nil
}

func (u *fakeUpstream) accepts(v string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.accepted[v]
}

func (u *fakeUpstream) callsSince(i int) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.calls[i:]...)
}

// TestRetireCancelsRotationsInFlight: retiring an environment ends the
// rotations of its secrets that are in flight, through the same
// transitions a failed or rolled-back rotation takes, while the secrets
// are still live: one before finish (its PENDING value discarded upstream
// and dropped, CURRENT untouched), one in its grace period (stopped: the
// new value stays CURRENT, PREVIOUS the old one, never revoked). Each
// cancellation is audited and shown in the plan. After the retirement
// nothing runs for the archived environment: no retry, no revoke at the
// end of grace, no alert; restored, the secrets hold values that work
// upstream. A rotation elsewhere goes on.
func TestRetireCancelsRotationsInFlight(t *testing.T) {
	f := mustFixture(t)
	withMonitoring(t, f)
	ctx := t.Context()
	clk := &clock{time.Now().UTC()}
	f.core.Now = clk.now
	if err := f.core.CreateEnv(ctx, f.admin, "payments", "staging"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var audit []*tokenward.AuditEntry
	f.core.Monitoring.Record = func(ctx context.Context, e *tokenward.AuditEntry) error {
		mu.Lock()
		defer mu.Unlock()
		audit = append(audit, e)
		return nil
	}
	up := &fakeUpstream{accepted: map[string]bool{}, failTest: map[string]bool{"payments/staging/SLOW": true}}
	for _, p := range []string{"staging/SLOW", "staging/GRACE", "prod/KEEP"} {
		env, name, _ := strings.Cut(p, "/")
		f.put(t, env, name, "old-"+name)
		up.accepted["old-"+name] = true
	}
	secrets, err := f.core.RotationSecrets()
	if err != nil {
		t.Fatal(err)
	}
	mach := rotate.NewMachine(f.db.Rotations(), secrets, map[string]rotate.Rotator{"fake": up})
	mach.Now = clk.now
	alerts := 0
	mach.Alert = func(context.Context, *rotate.Rotation) { alerts++ }
	f.core.Rotation = &core.Rotation{Machine: mach, Scheduler: &rotate.Scheduler{Machine: mach, Concurrency: 1}}
	for _, p := range []string{"payments/staging/SLOW", "payments/staging/GRACE", "payments/prod/KEEP"} {
		if _, err := f.core.SetRotationPolicy(ctx, f.admin, &rotate.Policy{Path: p, Every: 30 * 24 * time.Hour, Grace: 24 * time.Hour, Rotator: "fake"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.core.RotateNow(ctx, f.admin, p); err != nil {
			t.Fatal(err)
		}
	}
	inflight := func() map[string]rotate.Step {
		t.Helper()
		rs, err := mach.Store.InFlight(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]rotate.Step{}
		for _, r := range rs {
			out[r.Path] = r.Step
		}
		return out
	}
	if got := inflight(); got["payments/staging/SLOW"] != rotate.StepTest || got["payments/staging/GRACE"] != rotate.StepRevoke || got["payments/prod/KEEP"] != rotate.StepRevoke {
		t.Fatalf("before the retirement: got in flight %v; want SLOW at test, GRACE and KEEP at revoke", got)
	}

	plan, err := f.core.Retire(ctx, f.admin, "payments", "staging", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Join(plan.Disable, "\n")
	for _, want := range []string{"rotation of payments/staging/SLOW", "rotation of payments/staging/GRACE"} {
		if !strings.Contains(lines, want) {
			t.Errorf("dry run: got plan lines %q; want one naming %q", plan.Disable, want)
		}
	}
	if strings.Contains(lines, "payments/prod/KEEP") {
		t.Errorf("dry run: got plan lines %q; want nothing of payments/prod", plan.Disable)
	}
	if got := inflight(); len(got) != 3 {
		t.Fatalf("after a dry run: got in flight %v; want all three still", got)
	}

	calls := len(up.callsSince(0))
	if _, err := f.core.Retire(ctx, f.admin, "payments", "staging", 0, false); err != nil {
		t.Fatal(err)
	}
	if got := inflight(); len(got) != 1 || got["payments/prod/KEEP"] != rotate.StepRevoke {
		t.Errorf("after the retirement: got in flight %v; want only payments/prod/KEEP", got)
	}
	got := strings.Join(up.callsSince(calls), ", ")
	if !strings.Contains(got, "discard payments/staging/SLOW") || strings.Contains(got, "payments/staging/GRACE") || strings.Contains(got, "revoke") {
		t.Errorf("upstream calls of the retirement: got %q; want SLOW's new value discarded, GRACE left alone, nothing revoked", got)
	}
	for _, p := range []string{"payments/staging/SLOW", "payments/staging/GRACE"} {
		h, err := mach.Store.History(ctx, p, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0].Step != rotate.StepFailed || !strings.Contains(h[0].Error, "retired payments/staging") {
			t.Errorf("%s: got last rotation %+v; want failed, cancelled by the retirement", p, h[0])
		}
	}
	mu.Lock()
	cancelled := map[string]string{}
	for _, e := range audit {
		if e.Action == "rotation.cancel" {
			cancelled[e.Resource] = e.Reason
		}
	}
	mu.Unlock()
	if len(cancelled) != 2 || cancelled["payments/staging/SLOW"] != "retired payments/staging" || cancelled["payments/staging/GRACE"] != "retired payments/staging" {
		t.Errorf("got rotation.cancel entries %v; want SLOW and GRACE, reason retired payments/staging", cancelled)
	}

	// Past every retry and the end of grace: the archived environment's
	// rotations do nothing more; the one elsewhere revokes its old value.
	up.mu.Lock()
	delete(up.failTest, "payments/staging/SLOW")
	up.mu.Unlock()
	alerts = 0
	calls = len(up.callsSince(0))
	clk.t = clk.t.Add(48 * time.Hour)
	if err := f.core.Rotation.Scheduler.Tick(ctx); err != nil {
		t.Errorf("scheduler after the retirement: %v", err)
	}
	if got := strings.Join(up.callsSince(calls), ", "); got != "revoke payments/prod/KEEP" {
		t.Errorf("upstream calls after the retirement: got %q; want only the revoke of payments/prod/KEEP", got)
	}
	if alerts != 0 {
		t.Errorf("got %d rotation alerts after the retirement; want none", alerts)
	}

	// A rotation asked for by hand is refused: the rotator would make a
	// credential that could never be stored.
	calls = len(up.callsSince(0))
	if _, err := f.core.RotateNow(ctx, f.admin, "payments/staging/SLOW"); tokenward.ErrorCode(err) != tokenward.ECONFLICT || !strings.Contains(tokenward.ErrorMessage(err), "retired") {
		t.Errorf("rotate now in the retired environment: got %v; want ECONFLICT naming the retirement", err)
	}
	if got := up.callsSince(calls); len(got) != 0 {
		t.Errorf("upstream calls of a rotate now in the retired environment: got %q; want none", got)
	}
	if got := inflight(); len(got) != 0 {
		t.Errorf("after a rotate now in the retired environment: got in flight %v; want none", got)
	}

	// Restored, each secret holds values upstream accepts: SLOW the one
	// it held before its rotation, GRACE the rotated one, its old value
	// PREVIOUS (never revoked).
	if _, err := f.core.RestoreEnv(ctx, f.admin, "payments", "staging"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"SLOW", "GRACE"} {
		_, v, err := f.core.GetSecret(ctx, f.admin, "payments", "staging", name, 0)
		if err != nil {
			t.Fatal(err)
		}
		l, err := f.db.SecretLabels(ctx, "payments", "staging", name)
		if err != nil {
			t.Fatal(err)
		}
		switch rotated := strings.HasSuffix(string(v), "-rotated-value"); {
		case !up.accepts(string(v)):
			t.Errorf("%s restored: got CURRENT %q, which upstream does not accept", name, v)
		case name == "SLOW" && (string(v) != "old-SLOW" || l.Pending != 0 || l.Previous != 0):
			t.Errorf("SLOW restored: got CURRENT %q, labels %+v; want old-SLOW, neither PENDING nor PREVIOUS", v, l)
		case name == "GRACE" && (!rotated || l.Pending != 0 || l.Previous == 0):
			t.Errorf("GRACE restored: got CURRENT %q, labels %+v; want the rotated value, PREVIOUS the old one", v, l)
		}
	}
	l, err := f.db.SecretLabels(ctx, "payments", "staging", "GRACE")
	if err != nil {
		t.Fatal(err)
	}
	_, prev, err := f.core.GetSecret(ctx, f.admin, "payments", "staging", "GRACE", l.Previous)
	if err != nil || string(prev) != "old-GRACE" || !up.accepts(string(prev)) {
		t.Errorf("GRACE restored: got PREVIOUS (version %d) %q, %v; want old-GRACE, still accepted upstream", l.Previous, prev, err)
	}
}
