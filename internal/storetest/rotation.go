package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/rotate"
)

// LabelledStore is a Store that keeps rotation's staged versions.
type LabelledStore interface {
	tokenward.Store
	tokenward.LabelStore
}

// RunLabels runs the staged-version conformance tests; newStore returns a
// fresh, empty, open store (closed by the suite's cleanup).
func RunLabels(t *testing.T, newStore func(t *testing.T) LabelledStore) {
	runEach(t, newStore, []named[LabelledStore]{
		{"PendingPromoteRestore", testPendingPromoteRestore},
		{"PlainWriteAbovePending", testPlainWriteAbovePending},
		{"LabelConflicts", testLabelConflicts},
		{"PendingRacesWriter", testPendingRacesWriter},
	}...)
}

func wantLabels(t *testing.T, s LabelledStore, want tokenward.VersionLabels) {
	t.Helper()
	got, err := s.SecretLabels(ctx, "p", "prod", "KEY")
	must(t, err)
	if *got != want {
		t.Fatalf("labels: got %+v; want %+v", *got, want)
	}
}

// wantCurrent checks that every read of the current value (one secret, the
// environment for run/export) delivers version n's ciphertext ct.
func wantCurrent(t *testing.T, s LabelledStore, n int, ct string) {
	t.Helper()
	meta, v, err := s.CurrentSecret(ctx, "p", "prod", "KEY")
	must(t, err)
	if meta.Version != n || v.Version != n || string(v.Ciphertext) != ct {
		t.Fatalf("CurrentSecret: got version %d/%d %q; want %d %q", meta.Version, v.Version, v.Ciphertext, n, ct)
	}
	secrets, versions, err := s.EnvSecrets(ctx, "p", "prod")
	must(t, err)
	if len(secrets) != 1 || versions[0].Version != n || string(versions[0].Ciphertext) != ct {
		t.Fatalf("EnvSecrets: got %d secrets, version %d %q; want version %d %q", len(secrets), versions[0].Version, versions[0].Ciphertext, n, ct)
	}
}

func testPendingPromoteRestore(t *testing.T, s LabelledStore) {
	newProject(t, s, "p", "prod")
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	must(t, s.PutSecret(ctx, meta, 0, version(1, "c1")))
	wantLabels(t, s, tokenward.VersionLabels{Current: 1, Latest: 1})

	must(t, s.PutPendingVersion(ctx, "p", "prod", "KEY", "rot_1", version(2, "c2")))
	wantLabels(t, s, tokenward.VersionLabels{Current: 1, Pending: 2, Latest: 2, PendingRotation: "rot_1"})
	wantCurrent(t, s, 1, "c1") // run/export keep CURRENT during a rotation
	v, err := s.SecretVersion(ctx, "p", "prod", "KEY", 2)
	must(t, err)
	if string(v.Ciphertext) != "c2" {
		t.Fatalf("pending version: got %q; want c2", v.Ciphertext)
	}

	// Promoting CURRENT is a no-op; a version that is not PENDING cannot be.
	must(t, s.PromoteVersion(ctx, "p", "prod", "KEY", 1, base.Add(time.Hour)))
	wantCode(t, s.PromoteVersion(ctx, "p", "prod", "KEY", 99, base.Add(time.Hour)), tokenward.ECONFLICT)
	wantLabels(t, s, tokenward.VersionLabels{Current: 1, Pending: 2, Latest: 2, PendingRotation: "rot_1"})
	for range 2 { // a repeat after a crash changes nothing
		must(t, s.PromoteVersion(ctx, "p", "prod", "KEY", 2, base.Add(time.Hour)))
	}
	wantLabels(t, s, tokenward.VersionLabels{Current: 2, Previous: 1, Latest: 2})
	wantCurrent(t, s, 2, "c2")
	got, err := s.Secret(ctx, "p", "prod", "KEY")
	must(t, err)
	if !got.UpdatedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("updated at: got %v; want %v", got.UpdatedAt, base.Add(time.Hour))
	}

	for range 2 {
		must(t, s.RestoreVersion(ctx, "p", "prod", "KEY", 1, base.Add(2*time.Hour)))
	}
	wantLabels(t, s, tokenward.VersionLabels{Current: 1, Latest: 2})
	wantCurrent(t, s, 1, "c1")

	// Another rotation: PENDING then dropped (a rollback before finish).
	must(t, s.PutPendingVersion(ctx, "p", "prod", "KEY", "rot_2", version(3, "c3")))
	must(t, s.UnlabelVersion(ctx, "p", "prod", "KEY", tokenward.LabelPending, 2)) // not on 2: no-op
	wantLabels(t, s, tokenward.VersionLabels{Current: 1, Pending: 3, Latest: 3, PendingRotation: "rot_2"})
	must(t, s.UnlabelVersion(ctx, "p", "prod", "KEY", tokenward.LabelPending, 3))
	wantLabels(t, s, tokenward.VersionLabels{Current: 1, Latest: 3})
	wantCurrent(t, s, 1, "c1")
}

func testPlainWriteAbovePending(t *testing.T, s LabelledStore) {
	newProject(t, s, "p", "prod")
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	must(t, s.PutSecret(ctx, meta, 0, version(1, "c1")))
	must(t, s.PutPendingVersion(ctx, "p", "prod", "KEY", "rot_1", version(2, "c2")))
	// prev+1 is taken by the pending version: the writer must go above it.
	wantCode(t, s.PutSecret(ctx, meta, 1, version(2, "w2")), tokenward.ECONFLICT)
	must(t, s.PutSecret(ctx, meta, 1, version(3, "c3")))
	wantLabels(t, s, tokenward.VersionLabels{Current: 3, Pending: 2, Latest: 3, PendingRotation: "rot_1"})
	wantCurrent(t, s, 3, "c3")
	// The pending version cannot be promoted over a CURRENT it did not
	// start from? The store does not know; the state machine checks that.
	// It can still be dropped.
	must(t, s.UnlabelVersion(ctx, "p", "prod", "KEY", tokenward.LabelPending, 2))
	wantLabels(t, s, tokenward.VersionLabels{Current: 3, Latest: 3})
}

func testLabelConflicts(t *testing.T, s LabelledStore) {
	newProject(t, s, "p", "prod")
	_, err := s.SecretLabels(ctx, "p", "prod", "KEY")
	wantCode(t, err, tokenward.ENOTFOUND)
	wantCode(t, s.PutPendingVersion(ctx, "p", "prod", "KEY", "rot_1", version(1, "c1")), tokenward.ENOTFOUND)
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	must(t, s.PutSecret(ctx, meta, 0, version(1, "c1")))
	wantCode(t, s.PutPendingVersion(ctx, "p", "prod", "KEY", "rot_1", version(1, "x")), tokenward.ECONFLICT)
	wantCode(t, s.PutPendingVersion(ctx, "p", "prod", "KEY", "rot_1", version(3, "x")), tokenward.ECONFLICT)
	wantCode(t, s.PromoteVersion(ctx, "p", "prod", "KEY", 2, base), tokenward.ECONFLICT)
	wantCode(t, s.RestoreVersion(ctx, "p", "prod", "KEY", 2, base), tokenward.ECONFLICT)
	wantCode(t, s.PromoteVersion(ctx, "p", "prod", "NOPE", 2, base), tokenward.ENOTFOUND)
	must(t, s.PutPendingVersion(ctx, "p", "prod", "KEY", "rot_1", version(2, "c2")))
	// Restore needs PREVIOUS; a PENDING version is not one.
	wantCode(t, s.RestoreVersion(ctx, "p", "prod", "KEY", 2, base), tokenward.ECONFLICT)
	wantLabels(t, s, tokenward.VersionLabels{Current: 1, Pending: 2, Latest: 2, PendingRotation: "rot_1"})
}

// testPendingRacesWriter races rotations staging version 2 against plain
// writers of version 2: exactly one wins, the others get ECONFLICT.
func testPendingRacesWriter(t *testing.T, s LabelledStore) {
	newProject(t, s, "p", "prod")
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	must(t, s.PutSecret(ctx, meta, 0, version(1, "c1")))
	var wg sync.WaitGroup
	var wins atomic.Int32
	start := make(chan struct{}) // all at once, the likelier to overlap
	for i := range 8 {
		wg.Go(func() {
			<-start
			var err error
			if i%2 == 0 {
				err = s.PutPendingVersion(ctx, "p", "prod", "KEY", fmt.Sprint("rot_", i), version(2, fmt.Sprint("r", i)))
			} else {
				err = s.PutSecret(ctx, meta, 1, version(2, fmt.Sprint("w", i)))
			}
			switch {
			case err == nil:
				wins.Add(1)
			case tokenward.ErrorCode(err) != tokenward.ECONFLICT:
				t.Errorf("racer %d: got %v; want conflict or success", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("got %d winners for version 2; want 1", wins.Load())
	}
	l, err := s.SecretLabels(ctx, "p", "prod", "KEY")
	must(t, err)
	if l.Latest != 2 || (l.Current == 2) == (l.Pending == 2) {
		t.Fatalf("labels: got %+v; want version 2 either CURRENT or PENDING", *l)
	}
}

// RunRotation runs the rotation record and policy conformance tests.
func RunRotation(t *testing.T, newStore func(t *testing.T) rotate.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, rotate.Store)
	}{
		{"Rotations", testRotations},
		{"OneInFlightPerSecret", testOneInFlight},
		{"Policies", testPolicies},
		{"ClaimPolicyRun", testClaimPolicyRun},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func rotation(id, path string, at time.Time) *rotate.Rotation {
	return &rotate.Rotation{ID: id, Path: path, Rotator: "random", Config: map[string]string{"length": "16"},
		Grace: time.Hour, Reason: "manual", Step: rotate.StepCreate, CurrentVersion: 1, CreatedAt: at, UpdatedAt: at}
}

func testRotations(t *testing.T, s rotate.Store) {
	r := rotation("rot_a", "p/prod/KEY", base)
	must(t, s.CreateRotation(ctx, r))
	if r.Rev != 1 {
		t.Fatalf("rev after create: got %d; want 1", r.Rev)
	}
	got, err := s.Rotation(ctx, "rot_a")
	must(t, err)
	if got.Path != r.Path || got.Config["length"] != "16" || got.Grace != time.Hour || !got.CreatedAt.Equal(base) || got.Step != rotate.StepCreate {
		t.Fatalf("got %+v; want %+v", got, r)
	}
	stale := *got
	got.Step, got.PendingVersion, got.NextAt, got.Error = rotate.StepSet, 2, base.Add(time.Minute), "boom (attempt 1)"
	must(t, s.UpdateRotation(ctx, got))
	if got.Rev != 2 {
		t.Fatalf("rev after update: got %d; want 2", got.Rev)
	}
	// The machine tells a concurrent advance from a failure by the sentinel.
	if err := s.UpdateRotation(ctx, &stale); !errors.Is(err, rotate.ErrStale) {
		t.Fatalf("stale update: got %v; want rotate.ErrStale", err)
	}
	again, err := s.Rotation(ctx, "rot_a")
	must(t, err)
	if again.Step != rotate.StepSet || again.PendingVersion != 2 || !again.NextAt.Equal(base.Add(time.Minute)) || again.Error != "boom (attempt 1)" {
		t.Fatalf("after update: got %+v", again)
	}
	_, err = s.Rotation(ctx, "rot_nope")
	wantCode(t, err, tokenward.ENOTFOUND)

	must(t, s.CreateRotation(ctx, rotation("rot_b", "p/prod/OTHER", base.Add(time.Second))))
	fl, err := s.InFlight(ctx)
	must(t, err)
	if len(fl) != 2 || fl[0].ID != "rot_a" || fl[1].ID != "rot_b" {
		t.Fatalf("in flight: got %d; want rot_a, rot_b", len(fl))
	}
	again.Step, again.FinishedAt = rotate.StepDone, base.Add(time.Hour)
	must(t, s.UpdateRotation(ctx, again))
	must(t, s.CreateRotation(ctx, rotation("rot_c", "p/prod/KEY", base.Add(2*time.Second))))
	// A failed rotation frees its secret's slot too.
	b, err := s.Rotation(ctx, "rot_b")
	must(t, err)
	b.Step, b.FinishedAt = rotate.StepFailed, base.Add(time.Hour)
	must(t, s.UpdateRotation(ctx, b))
	must(t, s.CreateRotation(ctx, rotation("rot_d", "p/prod/OTHER", base.Add(3*time.Second))))
	fl, err = s.InFlight(ctx)
	must(t, err)
	if len(fl) != 2 || fl[0].ID != "rot_c" || fl[1].ID != "rot_d" {
		t.Fatalf("in flight after done and failed: got %d; want rot_c, rot_d", len(fl))
	}
	h, err := s.History(ctx, "p/prod/KEY", 0)
	must(t, err)
	if len(h) != 2 || h[0].ID != "rot_c" || h[1].ID != "rot_a" {
		t.Fatalf("history: got %d; want rot_c, rot_a (newest first)", len(h))
	}
	h, err = s.History(ctx, "", 1)
	must(t, err)
	if len(h) != 1 || h[0].ID != "rot_d" {
		t.Fatalf("history of all, limit 1: got %d; want rot_d", len(h))
	}
}

func testOneInFlight(t *testing.T, s rotate.Store) {
	var wg sync.WaitGroup
	var ok, inflight atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			err := s.CreateRotation(ctx, rotation(fmt.Sprintf("rot_%d", i), "p/prod/KEY", base))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, rotate.ErrInFlight): // the scheduler skips on it
				inflight.Add(1)
			default:
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || inflight.Load() != 7 {
		t.Fatalf("concurrent creates: got %d created, %d conflicts; want 1 and 7", ok.Load(), inflight.Load())
	}
}

func testPolicies(t *testing.T, s rotate.Store) {
	_, err := s.Policy(ctx, "p/prod/KEY")
	wantCode(t, err, tokenward.ENOTFOUND)
	p := &rotate.Policy{Path: "p/prod/KEY", Every: 30 * 24 * time.Hour, Jitter: time.Hour, Grace: 24 * time.Hour,
		Rotator: "postgres", Config: map[string]string{"role": "app"}, NextAt: base.Add(time.Hour)}
	must(t, s.PutPolicy(ctx, p))
	must(t, s.PutPolicy(ctx, &rotate.Policy{Path: "p/prod/A", Cron: "0 3 * * 1", Rotator: "random", NextAt: base}))
	must(t, s.PutPolicy(ctx, &rotate.Policy{Path: "p/prod/B", Every: time.Hour, Rotator: "random", Disabled: true}))
	got, err := s.Policy(ctx, "p/prod/KEY")
	must(t, err)
	if got.Every != p.Every || got.Jitter != p.Jitter || got.Grace != p.Grace || got.Rotator != "postgres" || got.Config["role"] != "app" || !got.NextAt.Equal(p.NextAt) {
		t.Fatalf("got %+v; want %+v", got, p)
	}
	due, err := s.DuePolicies(ctx, base)
	must(t, err)
	if len(due) != 1 || due[0].Path != "p/prod/A" {
		t.Fatalf("due at base: got %d; want p/prod/A only (B is disabled, KEY later)", len(due))
	}
	due, err = s.DuePolicies(ctx, base.Add(time.Hour))
	must(t, err)
	if len(due) != 2 || due[0].Path != "p/prod/A" || due[1].Path != "p/prod/KEY" {
		t.Fatalf("due an hour later: got %d; want A, KEY", len(due))
	}
	got.Disabled = true
	must(t, s.PutPolicy(ctx, got))
	all, err := s.Policies(ctx)
	must(t, err)
	if len(all) != 3 || all[0].Path != "p/prod/A" || !all[2].Disabled {
		t.Fatalf("policies: got %d; want 3 by path, KEY disabled", len(all))
	}
}

// testClaimPolicyRun: a due run is claimed once, by whoever moves the
// stored NextAt from the value it read; schedulers of servers whose
// leadership overlaps read the same due policy, and only one may start its
// rotation.
func testClaimPolicyRun(t *testing.T, s rotate.Store) {
	due := base.Add(123 * time.Nanosecond) // kept to the nanosecond
	must(t, s.PutPolicy(ctx, &rotate.Policy{Path: "p/prod/KEY", Every: time.Hour, Rotator: "random", NextAt: due}))
	read, err := s.DuePolicies(ctx, base.Add(time.Minute))
	must(t, err)
	if len(read) != 1 || !read[0].NextAt.Equal(due) {
		t.Fatalf("due: got %d policies; want p/prod/KEY at %s", len(read), due)
	}
	// The policy changes between the read and the claim, but not its
	// schedule: the claim writes the run's times only.
	must(t, s.PutPolicy(ctx, &rotate.Policy{Path: "p/prod/KEY", Every: time.Hour, Rotator: "random", Config: map[string]string{"length": "48"}, NextAt: due}))

	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			p := *read[0]
			p.LastAt, p.NextAt = base.Add(time.Duration(i)*time.Second), due.Add(time.Hour)
			ok, err := s.ClaimPolicyRun(ctx, &p, due)
			if err != nil {
				t.Errorf("claim %d: %v", i, err)
			}
			if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("concurrent claims of one run: got %d won; want 1", won.Load())
	}
	got, err := s.Policy(ctx, "p/prod/KEY")
	must(t, err)
	if !got.NextAt.Equal(due.Add(time.Hour)) || got.LastAt.Before(base) || got.Config["length"] != "48" {
		t.Fatalf("after the claim: got next %s, last %s, config %v; want next %s, the winner's last, config kept",
			got.NextAt, got.LastAt, got.Config, due.Add(time.Hour))
	}

	// A claim from a NextAt the store no longer holds changes nothing.
	late := *read[0]
	late.LastAt, late.NextAt = base.Add(time.Hour), due.Add(2*time.Hour)
	ok, err := s.ClaimPolicyRun(ctx, &late, due)
	must(t, err)
	again, err := s.Policy(ctx, "p/prod/KEY")
	must(t, err)
	if ok || !again.NextAt.Equal(got.NextAt) || !again.LastAt.Equal(got.LastAt) {
		t.Fatalf("stale claim: got %v, next %s; want false, next %s", ok, again.NextAt, got.NextAt)
	}

	// Neither a policy that was disabled nor one that is gone is claimed.
	got.Disabled = true
	must(t, s.PutPolicy(ctx, got))
	claim := *got
	claim.NextAt = got.NextAt.Add(time.Hour)
	if ok, err := s.ClaimPolicyRun(ctx, &claim, got.NextAt); err != nil || ok {
		t.Fatalf("claim of a disabled policy: got %v, %v; want false, nil", ok, err)
	}
	claim.Path = "p/prod/GONE"
	if ok, err := s.ClaimPolicyRun(ctx, &claim, got.NextAt); err != nil || ok {
		t.Fatalf("claim of a missing policy: got %v, %v; want false, nil", ok, err)
	}

	// A policy never scheduled (no NextAt) is due, and claimed from zero.
	must(t, s.PutPolicy(ctx, &rotate.Policy{Path: "p/prod/NEW", Every: time.Hour, Rotator: "random"}))
	fresh := &rotate.Policy{Path: "p/prod/NEW", Every: time.Hour, Rotator: "random", LastAt: base, NextAt: base.Add(time.Hour)}
	if ok, err := s.ClaimPolicyRun(ctx, fresh, time.Time{}); err != nil || !ok {
		t.Fatalf("claim of a policy with no NextAt: got %v, %v; want true, nil", ok, err)
	}
}

// RunBulkJobs runs the bulk rotation job suite; newStore returns a fresh,
// empty, open store (closed by the caller's cleanup).
func RunBulkJobs(t *testing.T, newStore func(t *testing.T) rotate.BulkJobStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, rotate.BulkJobStore)
	}{
		{"CreateUpdateRead", testBulkJobRecords},
		{"RunningBound", testBulkJobBound},
		{"ConcurrentBound", testBulkJobBoundRace},
		{"Prune", testBulkJobPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func bulkJob(id string, at time.Time) *rotate.BulkJob {
	return &rotate.BulkJob{ID: id, Owner: "tok_owner", Status: "running", Planned: 2, StartedAt: at, UpdatedAt: at, Items: []rotate.BulkItem{}}
}

func wantBulkJob(t *testing.T, s rotate.BulkJobStore, want *rotate.BulkJob) {
	t.Helper()
	got, err := s.BulkJob(ctx, want.ID)
	must(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got job %+v; want %+v", got, want)
	}
}

func testBulkJobRecords(t *testing.T, s rotate.BulkJobStore) {
	_, err := s.BulkJob(ctx, "bulk_none")
	wantCode(t, err, tokenward.ENOTFOUND)
	j := bulkJob("bulk_1", base)
	must(t, s.CreateBulkJob(ctx, j, 10, base))
	wantBulkJob(t, s, j)
	wantCode(t, s.CreateBulkJob(ctx, bulkJob("bulk_1", base), 10, base), tokenward.ECONFLICT)

	// A heartbeat, then the end with its items.
	j.UpdatedAt = base.Add(30 * time.Second)
	must(t, s.UpdateBulkJob(ctx, j))
	wantBulkJob(t, s, j)
	j.Status, j.UpdatedAt, j.FinishedAt = "failed", base.Add(time.Minute), base.Add(time.Minute)
	j.Items = []rotate.BulkItem{
		{Secret: "a/dev/one", Rotator: "random", Status: "rotated", RotationID: "rot_1"},
		{Secret: "a/dev/two", Status: "skipped", Reason: "no rotation policy"},
	}
	j.Error = "the catalog is unavailable"
	must(t, s.UpdateBulkJob(ctx, j))
	wantBulkJob(t, s, j)
	// The owner, plan and start are the creation's.
	moved := *j
	moved.Owner, moved.Planned, moved.StartedAt = "tok_other", 7, base.Add(time.Hour)
	must(t, s.UpdateBulkJob(ctx, &moved))
	wantBulkJob(t, s, j)

	wantCode(t, s.UpdateBulkJob(ctx, bulkJob("bulk_none", base)), tokenward.ENOTFOUND)
}

func testBulkJobBound(t *testing.T, s rotate.BulkJobStore) {
	live := base.Add(-2 * time.Minute)
	stale := bulkJob("bulk_stale", base.Add(-3*time.Minute)) // its server died
	must(t, s.CreateBulkJob(ctx, stale, 3, live.Add(-time.Hour)))
	done := bulkJob("bulk_done", base)
	must(t, s.CreateBulkJob(ctx, done, 3, live))
	done.Status, done.FinishedAt = "finished", base
	must(t, s.UpdateBulkJob(ctx, done))
	for i := range 3 {
		must(t, s.CreateBulkJob(ctx, bulkJob(fmt.Sprint("bulk_", i), base), 3, live))
	}
	wantCode(t, s.CreateBulkJob(ctx, bulkJob("bulk_4", base), 3, live), tokenward.ECONFLICT)
	if _, err := s.BulkJob(ctx, "bulk_4"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Fatalf("got %v for a refused job; want it not stored", err)
	}
	// One ends: room for one more.
	j := bulkJob("bulk_0", base)
	j.Status, j.FinishedAt = "finished", base
	must(t, s.UpdateBulkJob(ctx, j))
	must(t, s.CreateBulkJob(ctx, bulkJob("bulk_4", base), 3, live))
}

// testBulkJobBoundRace: servers starting jobs at once never run more than
// the bound between them.
func testBulkJobBoundRace(t *testing.T, s rotate.BulkJobStore) {
	const max, tries = 4, 12
	var wg sync.WaitGroup
	errs := make([]error, tries)
	for i := range tries {
		wg.Go(func() { errs[i] = s.CreateBulkJob(ctx, bulkJob(fmt.Sprint("bulk_", i), base), max, base) })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch tokenward.ErrorCode(err) {
		case "":
			created++
		case tokenward.ECONFLICT:
		default:
			t.Fatalf("got %v; want success or ECONFLICT", err)
		}
	}
	if created != max {
		t.Fatalf("got %d jobs created by %d racing servers; want %d", created, tries, max)
	}
}

func testBulkJobPrune(t *testing.T, s rotate.BulkJobStore) {
	old := bulkJob("bulk_old", base.Add(-2*time.Hour))
	must(t, s.CreateBulkJob(ctx, old, 10, base.Add(-3*time.Hour)))
	old.Status, old.FinishedAt = "finished", old.StartedAt
	must(t, s.UpdateBulkJob(ctx, old))
	must(t, s.CreateBulkJob(ctx, bulkJob("bulk_abandoned", base.Add(-90*time.Minute)), 10, base.Add(-3*time.Hour)))
	recent := bulkJob("bulk_recent", base.Add(-30*time.Minute))
	must(t, s.CreateBulkJob(ctx, recent, 10, base.Add(-3*time.Hour)))
	recent.Status, recent.FinishedAt = "finished", recent.StartedAt
	must(t, s.UpdateBulkJob(ctx, recent))
	running := bulkJob("bulk_running", base.Add(-2*time.Hour)) // started long ago, heartbeat fresh
	must(t, s.CreateBulkJob(ctx, running, 10, base.Add(-3*time.Hour)))
	running.UpdatedAt = base
	must(t, s.UpdateBulkJob(ctx, running))

	n, err := s.PruneBulkJobs(ctx, base.Add(-time.Hour))
	must(t, err)
	if n != 2 {
		t.Fatalf("got %d jobs pruned; want 2", n)
	}
	for _, tc := range []struct {
		id   string
		code string
	}{{"bulk_old", tokenward.ENOTFOUND}, {"bulk_abandoned", tokenward.ENOTFOUND}, {"bulk_recent", ""}, {"bulk_running", ""}} {
		_, err := s.BulkJob(ctx, tc.id)
		if got := tokenward.ErrorCode(err); got != tc.code {
			t.Errorf("%s after the prune: got %v; want code %q", tc.id, err, tc.code)
		}
	}
}
