package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/rotate"
)

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
