package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// leaseRenewClient is what a leaseRenewer needs of the server
// (*client.Client).
type leaseRenewClient interface {
	RenewLease(ctx context.Context, id, increment string) (*api.RenewedLease, error)
}

// leaseRenewer keeps the leases a run holds alive while it runs, as Vault
// Agent does: each is renewed by its source's TTL when two thirds of the
// time from its last renewal to its expiry have passed, up to its max
// TTL. A failed renewal is retried sooner, with a bounded backoff, while
// the lease has time left. Warnings name a lease and a time, never a
// credential.
type leaseRenewer struct {
	Client leaseRenewClient
	Warn   func(string)
	// Now and After are the clock (time.Now and time.After by default).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// RetryMin and RetryMax bound the wait before retrying a failed
	// renewal: RetryMin, doubled at each failure, at most RetryMax.
	RetryMin, RetryMax time.Duration
}

func newLeaseRenewer(c leaseRenewClient, warn func(string)) *leaseRenewer {
	return &leaseRenewer{Client: c, Warn: warn, Now: time.Now, After: time.After, RetryMin: time.Second, RetryMax: time.Minute}
}

// Start renews each of leases (updated in place at each renewal) until
// stop is called. stop returns once no renewal is under way, so the
// leases may then be read and revoked.
func (r *leaseRenewer) Start(ctx context.Context, leases []*tokenward.Lease) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, l := range leases {
		wg.Go(func() { r.keep(ctx, l) })
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// keep renews l until ctx ends, l reaches its max TTL, or the server
// refuses to renew it (revoked, expired, unknown).
func (r *leaseRenewer) keep(ctx context.Context, l *tokenward.Lease) {
	last := r.Now()
	capped := false // renewed up to its max TTL: no renewal is left
	for {
		wait := max(l.ExpiresAt.Sub(last)*2/3, r.RetryMin)
		if !r.sleep(ctx, wait) {
			return
		}
		if capped || !l.ExpiresAt.Before(l.MaxExpiresAt) {
			r.Warn(fmt.Sprintf("lease %s reached its max ttl: its credential stops working at %s", l.ID, l.ExpiresAt.Format(time.RFC3339)))
			return
		}
		for backoff := r.RetryMin; ; backoff = min(2*backoff, r.RetryMax) {
			next, wasCapped, err := r.renew(ctx, l)
			if ctx.Err() != nil {
				return // the run ended (the request was cancelled)
			}
			if err == nil {
				*l, capped, last = *next, wasCapped, r.Now()
				break
			}
			left := l.ExpiresAt.Sub(r.Now())
			if unrenewable(err) || left <= 0 {
				r.Warn(fmt.Sprintf("renew lease %s: %s; its credential stops working at %s", l.ID, cliError(err), l.ExpiresAt.Format(time.RFC3339)))
				return
			}
			retry := max(min(backoff, left/2), r.RetryMin)
			r.Warn(fmt.Sprintf("renew lease %s: %s; retrying in %s (its credential works until %s)", l.ID, cliError(err), retry, l.ExpiresAt.Format(time.RFC3339)))
			if !r.sleep(ctx, retry) {
				return
			}
		}
	}
}

// renew extends l once by its source's TTL. The server caps a renewal at
// the lease's max TTL; capped says this one reached it.
func (r *leaseRenewer) renew(ctx context.Context, l *tokenward.Lease) (next *tokenward.Lease, capped bool, err error) {
	got, err := r.Client.RenewLease(ctx, l.ID, "")
	if err != nil {
		return nil, false, err
	}
	return got.Lease, !got.ExpiresAt.Before(got.MaxExpiresAt), nil
}

// unrenewable reports whether a renewal refused with err cannot succeed later:
// the lease is revoked, expired or unknown. Anything
// else (the server or network down, a rate limit) is retried.
func unrenewable(err error) bool {
	switch tokenward.ErrorCode(err) {
	case tokenward.ECONFLICT, tokenward.ENOTFOUND:
		return true
	}
	return false
}

// sleep waits for d, or returns false when ctx ends first.
func (r *leaseRenewer) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-r.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
