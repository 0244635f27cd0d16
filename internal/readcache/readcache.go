// Package readcache keeps the answers of a store's hottest reads while the
// store's change clock says nothing changed, for every storage backend
// alike: internal/sqlite's clock reads the WAL index, internal/postgres's
// follows LISTEN/NOTIFY.
package readcache

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/tokenward/tokenward"
)

// Cache keeps the answers of the hottest reads — a current secret
// (metadata and the sealed current version, never plaintext), an
// environment's secrets, an environment's current versions, a token by id
// (its record: the token itself is stored only as a hash) — so a repeated
// read needs no query at all. Entries are trusted only while the clock's
// generation is the one they were read at, and never while it cannot tell.
//
// A store embeds it, so that its methods are the store's own.
type Cache struct {
	clock tokenward.ChangeClock
	load  Loaders

	mu      sync.RWMutex
	at      uint64 // generation the entries were read at
	entries map[key]any
	flights map[key]*flight // misses being loaded
}

// flight is one miss being loaded. Callers that miss the same key at the
// same generation meanwhile wait for it rather than each running the query:
// a commit empties the whole cache, and under load every request in flight
// missed at once (with PostgreSQL, each a round trip).
type flight struct {
	gen  uint64
	done chan struct{} // closed when v and err are set
	v    any
	err  error
}

// waiting is called by a caller about to wait for another's load (tests).
var waiting = func() {}

// key names one cached read: its kind and its arguments.
type key struct {
	kind               byte // 'c' CurrentSecret, 's' Secrets, 'e' EnvSecrets, 't' Token (name: id)
	project, env, name string
}

// MaxEntries bounds a cache: when full, it starts over.
const MaxEntries = 10_000

// New returns an empty cache on clock, answering misses with load.
func New(clock tokenward.ChangeClock, load Loaders) *Cache {
	return &Cache{clock: clock, load: load, entries: map[key]any{}, flights: map[key]*flight{}}
}

// errLoadPanicked is the answer of the callers that waited for a load that
// panicked: the panic itself goes on up its own caller's stack.
var errLoadPanicked = tokenward.Errorf(tokenward.EINTERNAL, "the read being loaded for this request failed")

// cached returns load's answer, from the cache while nothing was committed
// since it was loaded. Callers get clone's copy, so they may change it. A
// caller waiting for another's load returns when ctx ends.
func cached[T any](ctx context.Context, c *Cache, k key, load func() (T, error), clone func(T) T) (T, error) {
	gen, ok := c.clock.Generation()
	if !ok {
		return load()
	}
	c.mu.RLock()
	v, hit := c.entries[k]
	hit = hit && c.at == gen
	c.mu.RUnlock()
	if hit {
		return clone(v.(T)), nil
	}
	c.mu.Lock()
	if v, hit := c.entries[k]; hit && c.at == gen { // loaded meanwhile
		c.mu.Unlock()
		return clone(v.(T)), nil
	}
	if f := c.flights[k]; f != nil && f.gen == gen {
		c.mu.Unlock()
		waiting()
		select {
		case <-f.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
		if f.err == nil {
			return clone(f.v.(T)), nil
		}
		if !errors.Is(f.err, context.Canceled) && !errors.Is(f.err, context.DeadlineExceeded) {
			var zero T
			return zero, f.err // the store's answer (not found, say), not the loader's context's
		}
		return load()
	}
	f := &flight{gen: gen, done: make(chan struct{})}
	c.flights[k] = f
	c.mu.Unlock()
	landed := false
	defer func() {
		if !landed { // load panicked (or exited its goroutine): release the waiters, free the key, let the panic go on
			c.mu.Lock()
			if c.flights[k] == f {
				delete(c.flights, k)
			}
			f.err = errLoadPanicked
			c.mu.Unlock()
			close(f.done)
		}
	}()
	lv, err := load()
	landed = true
	c.mu.Lock()
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	f.v, f.err = lv, err
	// Loaded after the clock said gen: newer, never older, than what gen
	// promises, so it is safe to serve while the generation is gen.
	if err == nil {
		if c.at != gen || len(c.entries) >= MaxEntries {
			c.entries = map[key]any{}
			c.at = gen
		}
		c.entries[k] = lv
	}
	c.mu.Unlock()
	close(f.done)
	if err != nil {
		return lv, err
	}
	return clone(lv), nil
}

// Loaders are the store's own queries, called on a miss.
type Loaders struct {
	CurrentSecret func(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error)
	Secrets       func(ctx context.Context, project, env string) ([]*tokenward.Secret, error)
	EnvSecrets    func(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error)
	Token         func(ctx context.Context, id string) (*tokenward.Token, error)
}

// CurrentSecret is tokenward.Store's CurrentSecret through the cache.
func (c *Cache) CurrentSecret(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	return c.currentSecret(ctx, project, env, name, func(r current) current { return current{cloneSecret(r.s), cloneVersion(r.v)} })
}

// SharedCurrentSecret is CurrentSecret without the copies, on
// SharedEnvSecrets' terms: a single secret read, the hottest path of all.
func (c *Cache) SharedCurrentSecret(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	return c.currentSecret(ctx, project, env, name, shared)
}

func (c *Cache) currentSecret(ctx context.Context, project, env, name string, clone func(current) current) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	r, err := cached(ctx, c, key{'c', project, env, name}, func() (current, error) {
		s, v, err := c.load.CurrentSecret(ctx, project, env, name)
		return current{s, v}, err
	}, clone)
	return r.s, r.v, err
}

// Secrets is tokenward.Store's Secrets through the cache.
func (c *Cache) Secrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	return c.secrets(ctx, project, env, cloneAll(cloneSecret))
}

// SharedSecrets is Secrets without the copies, on SharedEnvSecrets' terms.
func (c *Cache) SharedSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	return c.secrets(ctx, project, env, shared)
}

func (c *Cache) secrets(ctx context.Context, project, env string, clone func([]*tokenward.Secret) []*tokenward.Secret) ([]*tokenward.Secret, error) {
	return cached(ctx, c, key{'s', project, env, ""}, func() ([]*tokenward.Secret, error) {
		return c.load.Secrets(ctx, project, env)
	}, clone)
}

// EnvSecrets is tokenward.Store's EnvSecrets through the cache.
func (c *Cache) EnvSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	return c.envSecrets(ctx, project, env, func(r envSecrets) envSecrets {
		return envSecrets{cloneAll(cloneSecret)(r.s), cloneAll(cloneVersion)(r.v)}
	})
}

// SharedEnvSecrets is EnvSecrets without the copies: the slices and
// records it returns may be the cache's own, shared with every other
// caller, so the caller must not modify them (nor keep them past its
// request). It is for the hottest read-only paths, an environment fetch and
// the monitor counting one, where copying twenty records twice was a tenth
// of the request.
func (c *Cache) SharedEnvSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	return c.envSecrets(ctx, project, env, shared)
}

func (c *Cache) envSecrets(ctx context.Context, project, env string, clone func(envSecrets) envSecrets) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	r, err := cached(ctx, c, key{'e', project, env, ""}, func() (envSecrets, error) {
		s, v, err := c.load.EnvSecrets(ctx, project, env)
		return envSecrets{s, v}, err
	}, clone)
	return r.s, r.v, err
}

// shared is the clone of the Shared* reads: none.
func shared[T any](v T) T { return v }

// current is CurrentSecret's answer as cached (one type for both methods
// that read it).
type current struct {
	s *tokenward.Secret
	v *tokenward.SecretVersion
}

// envSecrets is EnvSecrets' answer as cached (one type for both methods
// that read it: an entry is asserted back to its type).
type envSecrets struct {
	s []*tokenward.Secret
	v []*tokenward.SecretVersion
}

// Token is tokenward.Store's Token through the cache: it is read by id for
// every audited request the monitor looks at twice (an environment fetch,
// a refused token).
func (c *Cache) Token(ctx context.Context, id string) (*tokenward.Token, error) {
	return cached(ctx, c, key{'t', "", "", id}, func() (*tokenward.Token, error) {
		return c.load.Token(ctx, id)
	}, func(t *tokenward.Token) *tokenward.Token {
		if t == nil {
			return nil
		}
		cp := *t
		cp.Grants, cp.CI = slices.Clone(t.Grants), maps.Clone(t.CI)
		return &cp
	})
}

func cloneSecret(s *tokenward.Secret) *tokenward.Secret {
	if s == nil {
		return nil
	}
	c := *s
	c.Tags = slices.Clone(s.Tags)
	return &c
}

func cloneVersion(v *tokenward.SecretVersion) *tokenward.SecretVersion {
	if v == nil {
		return nil
	}
	c := *v // the ciphertext is shared: callers only read it (and a sealed value written to fails to open)
	return &c
}

func cloneAll[T any](clone func(*T) *T) func([]*T) []*T {
	return func(list []*T) []*T {
		if list == nil {
			return nil
		}
		out := make([]*T, len(list))
		for i, x := range list {
			out[i] = clone(x)
		}
		return out
	}
}
