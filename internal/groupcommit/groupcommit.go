// Package groupcommit batches work that is cheap to do many at once and
// costly to do one at a time, such as durable commits: callers that arrive
// while a batch is being committed share the next one.
package groupcommit

import (
	"context"
	"runtime"
	"sync"
)

// Group batches items of type T. The zero value is ready to use; a Group
// must not be copied after first use.
type Group[T any] struct {
	// Max bounds the items of one batch (0: no bound).
	Max int
	// Gather makes a new leader yield its processor once before it takes
	// its batch, so that callers already running (other requests on their
	// way to Do) join it. For a commit too cheap for callers to pile up
	// behind it — an append to a file in the page cache — batches are
	// otherwise of one, one system call per item. With nothing else to
	// run, the yield returns at once.
	Gather bool

	mu       sync.Mutex
	pending  []*waiter[T]
	leading  bool
	inFlight int // items of the batch being committed

	// waiters keeps *waiter[T]s for reuse: a new one per Do, with its
	// channel, was two allocations of every audited request.
	waiters sync.Pool
}

type waiter[T any] struct {
	item T
	done chan error
}

// Do queues item and returns what commit returned for the batch that held
// it. The first caller to find no batch being committed leads: it commits
// what is queued (its own item included), then hands the lead to a new
// goroutine if more arrived, so a caller waits for its own batch only.
// Batches are committed one at a time, in arrival order.
//
// commit gets the leader's context without its cancellation (the batch
// holds other callers' items); Do itself returns only once item's batch is
// committed, whatever ctx does, since commit may be writing it.
func (g *Group[T]) Do(ctx context.Context, item T, commit func(ctx context.Context, batch []T) error) error {
	w, _ := g.waiters.Get().(*waiter[T])
	if w == nil {
		w = &waiter[T]{done: make(chan error, 1)}
	}
	w.item = item
	g.mu.Lock()
	g.pending = append(g.pending, w)
	if g.leading {
		g.mu.Unlock()
		return g.wait(w)
	}
	g.leading = true
	g.mu.Unlock()
	if g.Gather {
		runtime.Gosched()
	}
	g.lead(context.WithoutCancel(ctx), commit, true)
	return g.wait(w)
}

// wait returns w's result and puts w back for another Do: the leader
// sent it as its last use of w, and w's channel is empty again.
func (g *Group[T]) wait(w *waiter[T]) error {
	err := <-w.done
	var zero T
	w.item = zero // hold no caller's item while pooled
	g.waiters.Put(w)
	return err
}

func (g *Group[T]) lead(ctx context.Context, commit func(context.Context, []T) error, once bool) {
	for {
		g.mu.Lock()
		n := len(g.pending)
		if g.Max > 0 {
			n = min(n, g.Max)
		}
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.inFlight = n
		g.mu.Unlock()
		if n > 0 {
			items := make([]T, n)
			for i, w := range batch {
				items[i] = w.item
			}
			err := commit(ctx, items)
			for _, w := range batch {
				w.done <- err
			}
		}
		g.mu.Lock()
		g.inFlight = 0
		if len(g.pending) == 0 {
			g.leading, g.pending = false, nil
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		if once {
			go g.lead(ctx, commit, false)
			return
		}
	}
}

// Waiting returns how many items are not committed yet: those queued and
// those of the batch being committed.
func (g *Group[T]) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending) + g.inFlight
}

// Queued returns how many items wait for a batch (not counting the one
// being committed).
func (g *Group[T]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}
