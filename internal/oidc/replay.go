package oidc

import (
	"context"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// ReplayCache remembers the identity tokens already exchanged, so each is
// exchanged at most once. Seen reports true when id was already recorded
// and has not yet expired; otherwise it records id until until and reports
// false. Check and record must be one atomic step: two concurrent calls with
// the same id must not both report false.
type ReplayCache interface {
	Seen(ctx context.Context, id string, until time.Time) (bool, error)
}

// DefaultReplayCacheSize bounds a MemoryReplayCache.
const DefaultReplayCacheSize = 1 << 20

// MemoryReplayCache is a ReplayCache in memory, for one server. Expired ids
// are swept as new ones arrive. When full of unexpired ids it refuses new
// ones (fails closed) rather than forgetting any.
type MemoryReplayCache struct {
	Now func() time.Time
	Max int

	mu        sync.Mutex
	ids       map[string]time.Time
	nextSweep time.Time
}

// NewMemoryReplayCache returns an empty cache with DefaultReplayCacheSize.
func NewMemoryReplayCache() *MemoryReplayCache {
	return &MemoryReplayCache{Now: time.Now, Max: DefaultReplayCacheSize, ids: make(map[string]time.Time)}
}

// sweepEvery bounds how often a full sweep runs when the cache is not full.
const sweepEvery = time.Minute

// Seen implements ReplayCache.
func (c *MemoryReplayCache) Seen(_ context.Context, id string, until time.Time) (bool, error) {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = make(map[string]time.Time)
	}
	if exp, ok := c.ids[id]; ok && now.Before(exp) {
		return true, nil
	}
	limit := c.Max
	if limit <= 0 {
		limit = DefaultReplayCacheSize
	}
	if !now.Before(c.nextSweep) || len(c.ids) >= limit {
		c.sweep(now)
		c.nextSweep = now.Add(sweepEvery)
	}
	if len(c.ids) >= limit {
		return false, tokenward.Errorf(tokenward.EUNAVAILABLE, "replay cache is full")
	}
	c.ids[id] = until
	return false, nil
}

func (c *MemoryReplayCache) sweep(now time.Time) {
	for id, exp := range c.ids {
		if !now.Before(exp) {
			delete(c.ids, id)
		}
	}
}

// Len returns the number of ids held, expired or not yet swept.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}
