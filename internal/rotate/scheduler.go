package rotate

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// Scheduler starts due rotations and advances in-flight ones (retries,
// revocations after grace), with bounded concurrency. Failures are counted
// and alerted by its Machine.
type Scheduler struct {
	Machine *Machine
	// Concurrency bounds the rotations run at once (default 4).
	Concurrency int
}

// Tick runs one pass at the machine's Now: every due policy gets a
// rotation (unless one is in flight) and its next due time, then every
// in-flight rotation whose time has come advances. It returns the first
// error of the pass; one secret's failure never stops the others.
func (s *Scheduler) Tick(ctx context.Context) error {
	m := s.Machine
	now := m.now()
	var errs []error
	due, err := m.Store.DuePolicies(ctx, now)
	if err != nil {
		return err
	}
	for _, p := range due {
		// Claim the run by scheduling the next one first: a policy whose
		// start fails (say, invalid config) must not be retried every
		// tick. It is counted from the time this run was due, not from
		// now, so an every schedule's jitter does not add to each
		// interval. The claim moves NextAt only from the value read here:
		// when leaderships overlap, another leader's scheduler may have
		// read the same run, and its rotation may even have finished
		// already (so ErrInFlight would not stop a second one).
		dueAt := p.NextAt
		p.LastAt, p.NextAt = now, p.NextAfterRun(dueAt, now)
		claimed, err := m.Store.ClaimPolicyRun(ctx, p, dueAt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !claimed {
			m.log().Debug("scheduled rotation claimed elsewhere", "secret", p.Path)
			continue
		}
		if _, err := m.Start(ctx, p, "scheduled"); err != nil && !errors.Is(err, ErrInFlight) {
			errs = append(errs, err)
		}
	}
	inflight, err := m.Store.InFlight(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var mu sync.Mutex
	s.each(ctx, len(inflight), func(i int) {
		r := inflight[i]
		if now.Before(r.NextAt) {
			return
		}
		if _, err := m.Advance(ctx, r.ID); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// each calls f(0..n-1) with at most Concurrency calls at once.
func (s *Scheduler) each(ctx context.Context, n int, f func(int)) {
	c := s.Concurrency
	if c <= 0 {
		c = 4
	}
	sem := make(chan struct{}, c)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// Run ticks every interval until ctx ends. Tick errors are logged by the
// machine and do not stop the loop.
func (s *Scheduler) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.Machine.log().Warn("rotation tick failed", "error", tokenward.ErrorMessage(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
