package core

import (
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// tokenCache keeps recently used token records by the token's hash, so a
// request does not read the store to authenticate. When the store has a
// tokenward.ChangeClock, an entry is trusted only while the clock's
// generation is the one it was read at: a revocation, a change of grants
// or expiry — through this server or another sharing the store — is seen
// by the next request after the clock learns of it (at once for this
// process's writes; within a notification's delay for PostgreSQL's other
// servers), and nothing is trusted while the clock cannot tell. The TTL
// bounds an entry's life in any case: it is the whole guarantee for a
// store without a clock. Expiry is checked on every use against the cached
// record, so it is never late.
type tokenCache struct {
	max   int
	clock tokenward.ChangeClock // nil: the TTL alone

	mu     sync.RWMutex
	byHash map[[32]byte]cachedToken
	byID   map[string][32]byte
}

type cachedToken struct {
	tok *tokenward.Token
	at  cacheStamp
}

// cacheStamp is when a lookup started: the time and the clock's
// generation. A record read after it is at least as new as it says.
type cacheStamp struct {
	now time.Time
	gen uint64
	ok  bool // the entry may be cached (and trusted) at all
}

func newTokenCache(max int, clock tokenward.ChangeClock) *tokenCache {
	return &tokenCache{max: max, clock: clock, byHash: map[[32]byte]cachedToken{}, byID: map[string][32]byte{}}
}

// stamp reads the clock; call it before looking up, and before reading
// the store on a miss.
func (c *tokenCache) stamp(now time.Time, ttl time.Duration) cacheStamp {
	s := cacheStamp{now: now, ok: ttl > 0}
	if c.clock != nil && s.ok {
		s.gen, s.ok = c.clock.Generation()
	}
	return s
}

func (c *tokenCache) get(hash [32]byte, s cacheStamp, ttl time.Duration) *tokenward.Token {
	if !s.ok {
		return nil
	}
	c.mu.RLock()
	e, ok := c.byHash[hash]
	c.mu.RUnlock()
	if !ok || e.at.gen != s.gen || s.now.Sub(e.at.now) >= ttl || s.now.Before(e.at.now) {
		return nil
	}
	return e.tok
}

// put caches tok, read from the store after s was taken.
func (c *tokenCache) put(hash [32]byte, tok *tokenward.Token, s cacheStamp) {
	if !s.ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byHash) >= c.max {
		// Full: start over rather than track recency on the hot path.
		c.byHash = map[[32]byte]cachedToken{}
		c.byID = map[string][32]byte{}
	}
	c.byHash[hash] = cachedToken{tok: tok, at: s}
	c.byID[tok.ID] = hash
}

// drop forgets the token with id (after a revocation or change).
func (c *tokenCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.byID[id]; ok {
		delete(c.byHash, h)
		delete(c.byID, id)
	}
}
