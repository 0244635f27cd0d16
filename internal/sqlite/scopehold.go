package sqlite

import (
	"context"
	"sync"
)

// scopeHolds are HoldScope's holds, in this process (one server uses a
// SQLite file): a hold is exclusive on its key, and CreateLease shares
// its scope's keys while it records a lease. A hold waits for the leases
// being recorded; once a hold waits, new leases wait behind it, so a
// stream of leases cannot keep a retirement out.
type scopeHolds struct {
	mu      sync.Mutex
	changed chan struct{}  // closed, and replaced, at each release
	held    map[string]int // -1: held; n > 0: shared by n leases
	waiting map[string]int // holds waiting for the key
}

// hold takes keys, exclusively or shared, waiting until it may or ctx
// ends; release gives them back (once).
func (s *scopeHolds) hold(ctx context.Context, exclusive bool, keys ...string) (release func(), err error) {
	s.mu.Lock()
	if s.held == nil {
		s.held, s.waiting, s.changed = map[string]int{}, map[string]int{}, make(chan struct{})
	}
	if exclusive {
		for _, k := range keys {
			s.waiting[k]++
		}
		defer func() {
			s.mu.Lock()
			for _, k := range keys {
				if s.waiting[k]--; s.waiting[k] == 0 {
					delete(s.waiting, k)
				}
			}
			if err != nil {
				// Leases that waited behind this hold may go on.
				close(s.changed)
				s.changed = make(chan struct{})
			}
			s.mu.Unlock()
		}()
	}
	for {
		free := true
		for _, k := range keys {
			n := s.held[k]
			if n < 0 || exclusive && n > 0 || !exclusive && s.waiting[k] > 0 {
				free = false
			}
		}
		if free {
			for _, k := range keys {
				if exclusive {
					s.held[k] = -1
				} else {
					s.held[k]++
				}
			}
			s.mu.Unlock()
			return sync.OnceFunc(func() { s.release(exclusive, keys) }), nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
}

func (s *scopeHolds) release(exclusive bool, keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if s.held[k]--; exclusive || s.held[k] == 0 {
			delete(s.held, k)
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
}
