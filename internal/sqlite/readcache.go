package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// readCache keeps the answers of the hottest reads — a current secret
// (metadata and the sealed current version, never plaintext), an
// environment's secrets, an environment's current versions, a token by id
// (its record: the token itself is stored only as a hash) — so a repeated
// read needs no SQL at all. Entries are trusted only while the clock's
// generation is unchanged.
type readCache struct {
	clock changeClock

	mu      sync.RWMutex
	at      uint64 // generation the entries were read at
	entries map[cacheKey]any
}

// A changeClock tells a read cache when the database may have changed. Its
// generation moves on, before the commit's caller gets control back, with
// every commit by any connection or process; ok is false when it cannot
// tell, and the cache is then bypassed. SQLite's is walClock; a server
// database (PostgreSQL) would move it from LISTEN/NOTIFY.
type changeClock interface {
	generation() (gen uint64, ok bool)
	close()
}

// cacheKey names one cached read: its kind and its arguments.
type cacheKey struct {
	kind               byte // 'c' CurrentSecret, 's' Secrets, 'e' EnvSecrets, 't' Token (name: id)
	project, env, name string
}

const maxCached = 10_000

func (db *DB) openCurrentCache(ctx context.Context) error {
	clock, err := db.openWALClock(ctx)
	if err != nil {
		return err
	}
	db.current = &readCache{clock: clock, entries: map[cacheKey]any{}}
	return nil
}

func (c *readCache) close() {
	if c != nil {
		c.clock.close()
	}
}

// cached returns load's answer, from the cache while nothing was committed
// since it was loaded. Callers get clone's copy, so they may change it.
func cached[T any](c *readCache, key cacheKey, load func() (T, error), clone func(T) T) (T, error) {
	gen, ok := c.clock.generation()
	if ok {
		c.mu.RLock()
		v, hit := c.entries[key]
		hit = hit && c.at == gen
		c.mu.RUnlock()
		if hit {
			return clone(v.(T)), nil
		}
	}
	v, err := load()
	if err != nil || !ok {
		return v, err
	}
	// Loaded after the clock said gen: newer, never older, than what gen
	// promises, so it is safe to serve while the generation is gen.
	c.mu.Lock()
	if c.at != gen || len(c.entries) >= maxCached {
		c.entries = map[cacheKey]any{}
		c.at = gen
	}
	c.entries[key] = v
	c.mu.Unlock()
	return clone(v), nil
}

func (db *DB) CurrentSecret(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	type current struct {
		s *tokenward.Secret
		v *tokenward.SecretVersion
	}
	c, err := cached(db.current, cacheKey{'c', project, env, name}, func() (current, error) {
		s, v, err := db.currentSecret(ctx, project, env, name)
		return current{s, v}, err
	}, func(c current) current { return current{cloneSecret(c.s), cloneVersion(c.v)} })
	return c.s, c.v, err
}

func (db *DB) Secrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	return cached(db.current, cacheKey{'s', project, env, ""}, func() ([]*tokenward.Secret, error) {
		return db.secrets(ctx, project, env)
	}, cloneAll(cloneSecret))
}

func (db *DB) EnvSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	type envSecrets struct {
		s []*tokenward.Secret
		v []*tokenward.SecretVersion
	}
	e, err := cached(db.current, cacheKey{'e', project, env, ""}, func() (envSecrets, error) {
		s, v, err := db.envSecrets(ctx, project, env)
		return envSecrets{s, v}, err
	}, func(e envSecrets) envSecrets {
		return envSecrets{cloneAll(cloneSecret)(e.s), cloneAll(cloneVersion)(e.v)}
	})
	return e.s, e.v, err
}

// Token is read by id for every audited request the monitor looks at twice
// (an environment fetch, a refused token).
func (db *DB) Token(ctx context.Context, id string) (*tokenward.Token, error) {
	return cached(db.current, cacheKey{'t', "", "", id}, func() (*tokenward.Token, error) {
		return db.token(ctx, id)
	}, func(t *tokenward.Token) *tokenward.Token {
		c := *t
		c.Grants, c.CI = slices.Clone(t.Grants), maps.Clone(t.CI)
		return &c
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

// walClock reads SQLite's WAL-index header (the first bytes of the -shm
// file, https://sqlite.org/walformat.html#the_wal_index_file_format): every
// commit in WAL mode, by any connection or process, rewrites it before the
// commit returns — the frame count, the checksum of the last frame and,
// when the log restarts, the salts all change — because that header is how
// readers learn of commits. So a commit is seen by the first read that
// starts after it: there is no staleness window, for this process's writes
// or another's. One pread of 96 bytes, no SQL, no lock shared with other
// readers: PRAGMA data_version, which it replaces, was a query through
// database/sql on one connection, serialising every read.
type walClock struct {
	shm *os.File
	// pin is a read connection held open (after reading once, so it has
	// the WAL index open). While any connection of this process is open,
	// SQLite cannot delete or truncate the -shm file under shm: only the
	// last connection to close does.
	pin *sql.Conn

	mu  sync.Mutex
	hdr [walHeaderSize]byte // the header last seen
	gen uint64
}

const (
	walHeaderSize = 48      // one copy of WalIndexHdr; the file starts with two
	walVersion    = 3007000 // WalIndexHdr.iVersion of every SQLite since 3.7.0
)

func (db *DB) openWALClock(ctx context.Context) (*walClock, error) {
	pin, err := db.read.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var mode string
	var n int
	err = pin.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	if err == nil { // a read: the connection has the WAL index open after it
		err = pin.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n)
	}
	if err != nil || mode != "wal" {
		pin.Close()
		return nil, fmt.Errorf("journal mode %q, %v: the read cache needs WAL", mode, err)
	}
	shm, err := os.Open(db.Path + "-shm")
	if err != nil {
		pin.Close()
		return nil, err
	}
	c := &walClock{shm: shm, pin: pin}
	for range 20 { // another process may be mid-commit
		if _, ok := c.generation(); ok {
			return c, nil
		}
		time.Sleep(time.Millisecond)
	}
	c.close()
	return nil, fmt.Errorf("%s: not a WAL index this SQLite version writes", shm.Name())
}

func (c *walClock) close() {
	c.shm.Close()
	c.pin.Close()
}

func (c *walClock) generation() (uint64, bool) {
	var b [2 * walHeaderSize]byte
	if n, err := c.shm.ReadAt(b[:], 0); n != len(b) || err != nil {
		return 0, false
	}
	// A writer updates the second copy, then the first; copies that differ
	// are a commit in progress (SQLite's own readers retry then), and an
	// uninitialised or unknown header is no evidence either.
	hdr := [walHeaderSize]byte(b[:walHeaderSize])
	if hdr != [walHeaderSize]byte(b[walHeaderSize:]) || hdr[12] != 1 ||
		binary.NativeEndian.Uint32(hdr[:4]) != walVersion {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if hdr != c.hdr {
		c.hdr = hdr
		c.gen++
	}
	return c.gen, true
}

var _ tokenward.ChangeClock = (*DB)(nil)

// Generation implements tokenward.ChangeClock with the WAL index header:
// it moves with every commit, by any connection or process.
func (db *DB) Generation() (uint64, bool) {
	return db.current.clock.generation()
}
