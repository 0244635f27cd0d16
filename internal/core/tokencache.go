package core

import (
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// tokenCache keeps recently used token records by the token's hash, so a
// request does not read the store to authenticate. A revocation through this
// engine drops the entry at once; the TTL bounds how long a revocation made
// by another server sharing the store can go unseen. Expiry is checked on
// every use against the cached record, so it is never late.
type tokenCache struct {
	max int

	mu     sync.RWMutex
	byHash map[[32]byte]cachedToken
	byID   map[string][32]byte
}

type cachedToken struct {
	tok *tokenward.Token
	at  time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, byHash: map[[32]byte]cachedToken{}, byID: map[string][32]byte{}}
}

func (c *tokenCache) get(hash [32]byte, now time.Time, ttl time.Duration) *tokenward.Token {
	if ttl <= 0 {
		return nil
	}
	c.mu.RLock()
	e, ok := c.byHash[hash]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) >= ttl || now.Before(e.at) {
		return nil
	}
	return e.tok
}

func (c *tokenCache) put(hash [32]byte, tok *tokenward.Token, now time.Time, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byHash) >= c.max {
		// Full: start over rather than track recency on the hot path.
		c.byHash = map[[32]byte]cachedToken{}
		c.byID = map[string][32]byte{}
	}
	c.byHash[hash] = cachedToken{tok: tok, at: now}
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
