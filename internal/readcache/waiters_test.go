package readcache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// stuck is how long a test waits for an answer before it calls the caller
// blocked: far longer than any answer takes, short enough to fail rather
// than hang the run.
const stuck = 10 * time.Second

// TestWaiterReturnsWhenItsContextEnds: a caller waiting for another's load
// of its key returns when its own context ends, with its context's error,
// and the load goes on for its own caller.
func TestWaiterReturnsWhenItsContextEnds(t *testing.T) {
	clk := &fixedClock{}
	clk.gen.Store(1)
	started, release := make(chan struct{}), make(chan struct{})
	c := New(clk, Loaders{Token: func(_ context.Context, id string) (*tokenward.Token, error) {
		close(started)
		<-release
		return &tokenward.Token{ID: id}, nil
	}})
	waiterIn := make(chan struct{}, 1)
	waiting = func() { waiterIn <- struct{}{} }
	defer func() { waiting = func() {} }()

	leader := make(chan error, 1)
	go func() {
		_, err := c.Token(context.Background(), "tok_1")
		leader <- err
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx, "tok_1")
		waiter <- err
	}()
	<-waiterIn
	cancel()
	select {
	case err := <-waiter:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiter: got %v; want %v", err, context.Canceled)
		}
	case <-time.After(stuck):
		t.Errorf("waiter: still waiting %v after its context ended; want it to return", stuck)
	}
	close(release)
	if err := <-leader; err != nil {
		t.Errorf("leader: got %v; want its token", err)
	}
}

// TestPanickingLoaderReleasesItsWaiters: when a load panics, the panic goes
// on in its own caller's goroutine, the callers waiting for that load get an
// error, and the key is not left stuck: the next read loads again.
func TestPanickingLoaderReleasesItsWaiters(t *testing.T) {
	const waiters = 3
	clk := &fixedClock{}
	clk.gen.Store(1)
	started, release := make(chan struct{}), make(chan struct{})
	loads := 0 // the first load's caller alone, then this goroutine alone
	c := New(clk, Loaders{Token: func(_ context.Context, id string) (*tokenward.Token, error) {
		loads++
		if loads == 1 {
			close(started)
			<-release
			panic("loader bug")
		}
		return &tokenward.Token{ID: id}, nil
	}})
	waiterIn := make(chan struct{}, waiters)
	waiting = func() { waiterIn <- struct{}{} }
	defer func() { waiting = func() {} }()

	leader := make(chan any, 1)
	go func() {
		defer func() { leader <- recover() }()
		_, _ = c.Token(context.Background(), "tok_1")
	}()
	<-started
	answers := make(chan error, waiters)
	for range waiters {
		go func() {
			_, err := c.Token(context.Background(), "tok_1")
			answers <- err
		}()
	}
	for range waiters {
		<-waiterIn
	}
	close(release)
	if got := <-leader; got != "loader bug" {
		t.Errorf("leader: got panic %v; want the loader's panic, %q", got, "loader bug")
	}
	for i := range waiters {
		select {
		case err := <-answers:
			if err == nil || tokenward.ErrorCode(err) != tokenward.EINTERNAL {
				t.Errorf("waiter %d: got %v; want an internal error", i, err)
			}
		case <-time.After(stuck):
			t.Fatalf("waiter %d: still waiting %v after the load panicked; want an error", i, stuck)
		}
	}
	got := make(chan error, 1)
	go func() {
		_, err := c.Token(context.Background(), "tok_1")
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("the next read: got %v; want its token", err)
		}
	case <-time.After(stuck):
		t.Fatalf("the next read: still waiting %v; want the key not stuck after a panic", stuck)
	}
	if loads != 2 {
		t.Errorf("got %d loads; want 2 (the one that panicked, then one more)", loads)
	}
}
