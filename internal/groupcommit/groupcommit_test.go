package groupcommit_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/groupcommit"
)

// TestBatches holds the first commit until every other caller is queued:
// they all share the second batch, which Max splits, and each caller gets
// its own batch's error.
func TestBatches(t *testing.T) {
	g := &groupcommit.Group[int]{Max: 5}
	release, holding := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	errBad := errors.New("batch with 13")
	commit := func(_ context.Context, b []int) error {
		if slices.Contains(b, 0) {
			close(holding)
			<-release
		}
		mu.Lock()
		batches = append(batches, slices.Clone(b))
		mu.Unlock()
		if slices.Contains(b, 13) {
			return errBad
		}
		return nil
	}
	errs := make([]error, 16)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = g.Do(t.Context(), 0, commit) })
	// The others come once 0's commit holds: started first, 0 could still
	// be overtaken by one of them and lead a batch of its own that does
	// not hold (under load in CI: "got 0 queued").
	<-holding
	for i := 1; i < 16; i++ {
		wg.Go(func() { errs[i] = g.Do(t.Context(), i, commit) })
	}
	waitQueued(t, g)
	if n := g.Waiting(); n != 16 {
		t.Errorf("got %d waiting; want 16 (15 queued and the held batch of 1)", n)
	}
	close(release)
	wg.Wait()
	if n := g.Waiting(); n != 0 {
		t.Errorf("got %d waiting after every commit; want 0", n)
	}
	if len(batches) != 4 || len(batches[0]) != 1 {
		t.Fatalf("got batches %v; want [0] then 15 items in batches of at most 5", batches)
	}
	seen := map[int]bool{}
	for _, b := range batches[1:] {
		if len(b) > 5 {
			t.Errorf("got a batch of %d; want at most 5", len(b))
		}
		for _, x := range b {
			seen[x] = true
			var want error
			if slices.Contains(b, 13) {
				want = errBad
			}
			if errs[x] != want {
				t.Errorf("item %d: got %v; want %v", x, errs[x], want)
			}
		}
	}
	if len(seen) != 15 {
		t.Errorf("got %d items committed after the first; want 15", len(seen))
	}
}

// waitQueued waits until the 15 callers behind the held commit are queued.
func waitQueued(t *testing.T, g *groupcommit.Group[int]) {
	t.Helper()
	for range 5000 {
		if g.Queued() >= 15 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("got %d queued; want 15", g.Queued())
}

// TestGather: on one processor, callers already runnable when the first
// becomes leader join its batch when Gather is set, and do not without it
// (a batch each: the commit never blocks, so no one waits). The scheduler
// may resume the leader early (it checks the global run queue every 61st
// time), so with Gather the test asks for fewer batches than callers, not
// for one.
func TestGather(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const callers = 8
	for _, gather := range []bool{true, false} {
		g := &groupcommit.Group[int]{Gather: gather}
		var batches atomic.Int32
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.Do(context.Background(), i, func(context.Context, []int) error { batches.Add(1); return nil })
			}()
		}
		wg.Wait()
		got := int(batches.Load())
		if gather && got >= callers {
			t.Errorf("gather: got %d batches of %d callers; want callers to share batches", got, callers)
		}
		if !gather && got != callers {
			t.Errorf("no gather: got %d batches of %d callers; want one each", got, callers)
		}
	}
}

// TestDoAllocations: a caller's waiter and its channel are reused, so an
// uncontended Do allocates only for its batch (the queue, the items and the
// leader's context): 3, where a new waiter made it 6.
func TestDoAllocations(t *testing.T) {
	var g groupcommit.Group[*int]
	item := new(int)
	commit := func(context.Context, []*int) error { return nil }
	g.Do(t.Context(), item, commit) // the pool's first waiter
	if got := testing.AllocsPerRun(200, func() { g.Do(t.Context(), item, commit) }); got > 3 {
		t.Errorf("Do: %.1f allocations; want at most 3", got)
	}
}
