package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

var t0 = time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)

// renewClock is a leaseRenewer's clock that moves only when the test
// says: each wait the renewer asks for is sent on waits, and the test
// ends it with advance.
type renewClock struct {
	t     *testing.T
	mu    sync.Mutex
	now   time.Time
	waits chan time.Duration
	fire  chan time.Time
}

func newRenewClock(t *testing.T) *renewClock {
	return &renewClock{t: t, now: t0, waits: make(chan time.Duration, 16), fire: make(chan time.Time)}
}

func (c *renewClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *renewClock) After(d time.Duration) <-chan time.Time {
	c.waits <- d
	return c.fire
}

// next is the wait the renewer asks for next.
func (c *renewClock) next() time.Duration {
	c.t.Helper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(10 * time.Second):
		c.t.Fatal("the renewer asked for no wait")
		return 0
	}
}

// advance moves the clock by d and ends the renewer's wait.
func (c *renewClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	c.fire <- now
}

// fakeLeaseServer renews one lease as the server does: from now by the
// TTL or the increment, capped at the max TTL, refused once expired; fail
// are errors to answer first, one per call.
type fakeLeaseServer struct {
	now   func() time.Time
	ttl   time.Duration
	mu    sync.Mutex
	lease tokenward.Lease
	fail  []error
	calls []string // the increments asked for
	block chan struct{}
	// lenient renews even an expired lease: on the real clock, a slow
	// machine must not fail a test.
	lenient bool
}

func (s *fakeLeaseServer) RenewLease(ctx context.Context, id, increment string) (*api.RenewedLease, error) {
	s.mu.Lock()
	s.calls = append(s.calls, increment)
	block := s.block
	s.mu.Unlock()
	if block != nil {
		close(block)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.lease.ID {
		return nil, tokenward.Errorf(tokenward.ENOTFOUND, "lease %s not found", id)
	}
	if len(s.fail) > 0 {
		err := s.fail[0]
		s.fail = s.fail[1:]
		if err != nil {
			return nil, err
		}
	}
	d := s.ttl
	if increment != "" {
		var err error
		if d, err = time.ParseDuration(increment); err != nil {
			return nil, err
		}
	}
	now := s.now()
	if !s.lenient && !now.Before(s.lease.ExpiresAt) {
		return nil, tokenward.Errorf(tokenward.ECONFLICT, "lease %s expired", id)
	}
	s.lease.ExpiresAt = now.Add(d)
	var warns []string
	if s.lease.ExpiresAt.After(s.lease.MaxExpiresAt) {
		s.lease.ExpiresAt = s.lease.MaxExpiresAt
		warns = []string{"capped"}
	}
	l := s.lease
	return &api.RenewedLease{Lease: &l, Warnings: warns}, nil
}

func (s *fakeLeaseServer) increments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) warn(msg string) { w.mu.Lock(); defer w.mu.Unlock(); w.msgs = append(w.msgs, msg) }
func (w *warnings) all() []string   { w.mu.Lock(); defer w.mu.Unlock(); return slices.Clone(w.msgs) }

// renewCase is a lease of a source with ttl and maxTTL, made at t0, kept
// by a renewer on a test clock; done is closed when the renewer returns,
// and stop ends it.
func renewCase(t *testing.T, ttl, maxTTL time.Duration, fail ...error) (clk *renewClock, srv *fakeLeaseServer, w *warnings, held *tokenward.Lease, done <-chan struct{}, stop func()) {
	t.Helper()
	clk = newRenewClock(t)
	l := tokenward.Lease{ID: "lease_test", Role: "tw_test", State: tokenward.LeaseActive, CreatedAt: t0, ExpiresAt: t0.Add(ttl), MaxExpiresAt: t0.Add(maxTTL)}
	srv = &fakeLeaseServer{now: clk.Now, ttl: ttl, lease: l, fail: fail}
	w = &warnings{}
	r := newLeaseRenewer(srv, w.warn)
	r.Now, r.After = clk.Now, clk.After
	r.RetryMin, r.RetryMax = time.Second, 4*time.Second
	held = &l
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		r.keep(ctx, held)
	}()
	stop = func() { cancel(); <-ch }
	t.Cleanup(stop)
	return clk, srv, w, held, ch, stop
}

// drive answers the renewer's next len(want) waits, checking each.
func drive(t *testing.T, clk *renewClock, want ...time.Duration) {
	t.Helper()
	for i, d := range want {
		if got := clk.next(); got != d {
			t.Fatalf("wait %d: got %s; want %s", i+1, got, d)
		}
		clk.advance(d)
	}
}

// ended fails unless the renewer returns by itself, asking for no
// further wait.
func ended(t *testing.T, clk *renewClock, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case d := <-clk.waits:
		t.Fatalf("the renewer asked for another wait (%s); want it done", d)
	case <-time.After(10 * time.Second):
		t.Fatal("the renewer did not return")
	}
	if len(clk.waits) != 0 {
		t.Fatalf("the renewer asked for %d more waits; want it done", len(clk.waits))
	}
}

// TestLeaseRenewerUpToMaxTTL: renewed by the TTL when two thirds of it
// have passed, the last renewal capped at the max TTL by the server, then
// one warning (the lease and the time) and no further renewal.
func TestLeaseRenewerUpToMaxTTL(t *testing.T) {
	clk, srv, w, held, done, _ := renewCase(t, 15*time.Minute, time.Hour)
	last := 10 * time.Minute // from the capped renewal at 50m to the max
	drive(t, clk, 10*time.Minute, 10*time.Minute, 10*time.Minute, 10*time.Minute, 10*time.Minute, last*2/3)
	ended(t, clk, done)
	if got, want := srv.increments(), []string{"", "", "", "", ""}; !slices.Equal(got, want) {
		t.Errorf("increments: got %q; want %q (the TTL's, the last capped)", got, want)
	}
	if got, want := held.ExpiresAt, t0.Add(time.Hour); !got.Equal(want) {
		t.Errorf("held lease expires at %s; want %s", got, want)
	}
	want := []string{"lease lease_test reached its max ttl: its credential stops working at 2030-01-02T04:00:00Z"}
	if got := w.all(); !slices.Equal(got, want) {
		t.Errorf("warnings: got %q; want %q", got, want)
	}
}

// TestLeaseRenewerMaxTTLIsTTL: a lease that cannot be renewed is not: at
// the time it would be, one warning.
func TestLeaseRenewerMaxTTLIsTTL(t *testing.T) {
	clk, srv, w, _, done, _ := renewCase(t, 15*time.Minute, 15*time.Minute)
	drive(t, clk, 10*time.Minute)
	ended(t, clk, done)
	if got := srv.increments(); len(got) != 0 {
		t.Errorf("renewals: got %q; want none", got)
	}
	if got := w.all(); len(got) != 1 || !strings.Contains(got[0], "lease_test reached its max ttl: its credential stops working at 2030-01-02T03:15:00Z") {
		t.Errorf("warnings: got %q; want one, of the max ttl", got)
	}
}

// TestLeaseRenewerRetries: a failed renewal is warned and retried sooner,
// with a bounded backoff, then renewals go on as before.
func TestLeaseRenewerRetries(t *testing.T) {
	down := tokenward.Errorf(tokenward.EUNAVAILABLE, "database down")
	clk, srv, w, held, _, stop := renewCase(t, 15*time.Minute, time.Hour, down, down, down, down, down)
	drive(t, clk, 10*time.Minute, time.Second, 2*time.Second, 4*time.Second, 4*time.Second, 4*time.Second, 10*time.Minute)
	if got := clk.next(); got != 10*time.Minute {
		t.Fatalf("wait after two renewals: got %s; want 10m", got)
	}
	stop()
	if got := len(srv.increments()); got != 7 {
		t.Errorf("renewals asked: got %d; want 7 (5 failed)", got)
	}
	if got, want := held.ExpiresAt, t0.Add(10*time.Minute+15*time.Second+10*time.Minute+15*time.Minute); !got.Equal(want) {
		t.Errorf("held lease expires at %s; want %s", got, want)
	}
	got := w.all()
	if len(got) != 5 {
		t.Fatalf("warnings: got %q; want one per failure", got)
	}
	if want := "renew lease lease_test: database down (unavailable); retrying in 1s (its credential works until 2030-01-02T03:15:00Z)"; got[0] != want {
		t.Errorf("first warning: got %q; want %q", got[0], want)
	}
	if !strings.Contains(got[4], "retrying in 4s") {
		t.Errorf("last warning: got %q; want the backoff at its bound, 4s", got[4])
	}
}

// TestLeaseRenewerRetriesWhileTimeRemains: retries come no later than
// half the time left, and stop when the lease has expired.
func TestLeaseRenewerRetriesWhileTimeRemains(t *testing.T) {
	down := tokenward.Errorf(tokenward.EUNAVAILABLE, "database down")
	clk, _, w, _, done, _ := renewCase(t, 9*time.Second, time.Hour, down, down, down, down, down, down)
	drive(t, clk, 6*time.Second, time.Second, time.Second, time.Second)
	ended(t, clk, done)
	got := w.all()
	if len(got) != 4 || !strings.HasSuffix(got[3], "its credential stops working at 2030-01-02T03:00:09Z") {
		t.Fatalf("warnings: got %q; want 3 retries, then it stops working", got)
	}
}

// TestLeaseRenewerRefused: a lease the server will not renew (revoked,
// unknown) is warned once and left alone.
func TestLeaseRenewerRefused(t *testing.T) {
	for _, err := range []error{
		tokenward.Errorf(tokenward.ENOTFOUND, "lease lease_test not found"),
		tokenward.Errorf(tokenward.ECONFLICT, "lease lease_test is revoked; only an active lease renews"),
	} {
		t.Run(tokenward.ErrorCode(err), func(t *testing.T) {
			clk, _, w, _, done, _ := renewCase(t, 15*time.Minute, time.Hour, err, err)
			drive(t, clk, 10*time.Minute)
			ended(t, clk, done)
			got := w.all()
			if len(got) != 1 || !strings.HasPrefix(got[0], "renew lease lease_test: "+tokenward.ErrorMessage(err)) ||
				!strings.HasSuffix(got[0], "its credential stops working at 2030-01-02T03:15:00Z") {
				t.Fatalf("warnings: got %q; want one, with the error", got)
			}
		})
	}
}

// TestLeaseRenewerStop: stop ends a wait and a renewal under way, with
// no warning (the run is over; the lease is revoked next).
func TestLeaseRenewerStop(t *testing.T) {
	clk, srv, _, _, _, stop := renewCase(t, 15*time.Minute, time.Hour)
	clk.next()
	stop()
	if got := srv.increments(); len(got) != 0 {
		t.Errorf("renewals after stop: got %q; want none", got)
	}

	clk, srv, w, _, _, stop := renewCase(t, 15*time.Minute, time.Hour)
	entered := make(chan struct{})
	srv.mu.Lock()
	srv.block = entered
	srv.mu.Unlock()
	go clk.advance(clk.next())
	<-entered
	stop()
	if got := w.all(); len(got) != 0 {
		t.Errorf("warnings: got %q; want none", got)
	}
	if len(clk.waits) != 0 {
		t.Errorf("the renewer went on after stop")
	}
}

// TestLeaseRenewerRealClock: on the real clock, every held lease is
// renewed in place (what the run revokes at its end).
func TestLeaseRenewerRealClock(t *testing.T) {
	const ttl = 300 * time.Millisecond
	now := time.Now()
	var servers []*fakeLeaseServer
	var held []*tokenward.Lease
	for _, id := range []string{"lease_a", "lease_b"} {
		l := tokenward.Lease{ID: id, CreatedAt: now, ExpiresAt: now.Add(ttl), MaxExpiresAt: now.Add(time.Hour)}
		s := &fakeLeaseServer{now: time.Now, ttl: ttl, lease: l, lenient: true}
		servers = append(servers, s)
		held = append(held, &l)
	}
	w := &warnings{}
	r := newLeaseRenewer(routeLeases(servers), w.warn)
	r.RetryMin = 10 * time.Millisecond
	stop := r.Start(context.Background(), held)
	defer stop()
	for deadline := time.Now().Add(20 * time.Second); len(servers[0].increments()) < 2 || len(servers[1].increments()) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the leases were not renewed twice in 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	for i, l := range held {
		if !l.ExpiresAt.Equal(servers[i].lease.ExpiresAt) || l.ExpiresAt.Equal(now.Add(ttl)) {
			t.Errorf("%s expires at %s; want the last renewal's %s", l.ID, l.ExpiresAt, servers[i].lease.ExpiresAt)
		}
	}
	if got := w.all(); len(got) != 0 {
		t.Errorf("warnings: got %q; want none", got)
	}
}

// routeLeases is one renew client over a fake server per lease.
type routeLeases []*fakeLeaseServer

func (r routeLeases) RenewLease(ctx context.Context, id, increment string) (*api.RenewedLease, error) {
	for _, s := range r {
		if s.lease.ID == id {
			return s.RenewLease(ctx, id, increment)
		}
	}
	return nil, tokenward.Errorf(tokenward.ENOTFOUND, "lease %s not found", id)
}
