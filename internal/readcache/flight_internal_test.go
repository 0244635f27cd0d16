package readcache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenward/tokenward"
)

type fixedClock struct{ gen atomic.Uint64 }

func (c *fixedClock) Generation() (uint64, bool) { return c.gen.Load(), true }

// TestConcurrentMissesLoadOnce: callers that miss one key at one
// generation while its load is under way wait for that load instead of
// running their own — unless the load failed for its own caller's context,
// or they read a newer generation.
func TestConcurrentMissesLoadOnce(t *testing.T) {
	const callers = 8
	for _, tc := range []struct {
		name      string
		loadErr   error // the first load's
		newerGen  bool  // the clock moves after the first load starts
		wantLoads int64
		wantErr   bool
	}{
		{name: "one load for all", wantLoads: 1},
		{name: "a not-found answer is everyone's", loadErr: tokenward.Errorf(tokenward.ENOTFOUND, "no such secret"), wantLoads: 1, wantErr: true},
		{name: "a cancelled load: each loads for itself", loadErr: context.Canceled, wantLoads: callers},
		{name: "a newer generation does not wait for an older load", newerGen: true, wantLoads: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fixedClock{}
			clk.gen.Store(1)
			var loads atomic.Int64
			started, release := make(chan struct{}), make(chan struct{})
			c := New(clk, Loaders{CurrentSecret: func(_ context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
				if loads.Add(1) == 1 {
					close(started)
					<-release
					if tc.loadErr != nil {
						return nil, nil, tc.loadErr
					}
				}
				return &tokenward.Secret{Project: project, Env: env, Name: name}, &tokenward.SecretVersion{Version: 1}, nil
			}})
			var waiters sync.WaitGroup
			waiting = waiters.Done
			defer func() { waiting = func() {} }()
			answers := make(chan error, callers)
			read := func() {
				_, _, err := c.SharedCurrentSecret(context.Background(), "p", "e", "K")
				answers <- err
			}
			go read()
			<-started
			if tc.newerGen {
				// Generation 2's callers load once among themselves (or
				// find that load cached), while generation 1's load is
				// still under way.
				clk.gen.Store(2)
				for range callers - 1 {
					go read()
				}
				for range callers - 1 {
					if err := <-answers; err != nil {
						t.Fatalf("generation 2: %v", err)
					}
				}
			} else {
				waiters.Add(callers - 1)
				for range callers - 1 {
					go read()
				}
				waiters.Wait() // every follower waits for the first load
			}
			close(release)
			left := callers
			if tc.newerGen {
				left = 1
			}
			for range left {
				err := <-answers
				if (err != nil) != tc.wantErr && !(tc.loadErr == context.Canceled && err == context.Canceled) {
					t.Fatalf("got error %v; want an error: %v", err, tc.wantErr)
				}
			}
			if got := loads.Load(); got != tc.wantLoads {
				t.Errorf("got %d loads; want %d", got, tc.wantLoads)
			}
		})
	}
}
