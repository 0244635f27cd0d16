package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/tokenward/tokenward"
)

// currentCache keeps recently read current secrets (metadata and the sealed
// current version) so a read needs one tiny statement instead of a join.
// Entries are trusted only while PRAGMA data_version on a dedicated
// connection is unchanged: SQLite changes it whenever any other connection
// or process commits, so every write path (core, rotation, retirement,
// another tokenward process) invalidates the cache without knowing of it.
type currentCache struct {
	mu      sync.Mutex // serialises the version connection
	conn    *sql.Conn
	version *sql.Stmt

	entriesMu sync.RWMutex
	at        int64 // data_version the entries were read at
	entries   map[[3]string]cachedCurrent
}

type cachedCurrent struct {
	s *tokenward.Secret
	v *tokenward.SecretVersion
}

const maxCachedCurrent = 10_000

func (db *DB) openCurrentCache(ctx context.Context) error {
	conn, err := db.read.Conn(ctx)
	if err != nil {
		return err
	}
	stmt, err := conn.PrepareContext(ctx, `PRAGMA data_version`)
	if err != nil {
		conn.Close()
		return err
	}
	db.current = &currentCache{conn: conn, version: stmt, entries: map[[3]string]cachedCurrent{}}
	return nil
}

func (c *currentCache) close() {
	if c != nil {
		c.version.Close()
		c.conn.Close()
	}
}

// dataVersion reads the database's change counter as this cache's
// connection sees it.
func (c *currentCache) dataVersion(ctx context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var v int64
	err := c.version.QueryRowContext(ctx).Scan(&v)
	return v, err
}

// get returns a cached entry read at version ver.
func (c *currentCache) get(key [3]string, ver int64) (cachedCurrent, bool) {
	c.entriesMu.RLock()
	defer c.entriesMu.RUnlock()
	if c.at != ver {
		return cachedCurrent{}, false
	}
	e, ok := c.entries[key]
	return e, ok
}

// put stores an entry read after data_version was ver. An entry read later
// than ver is newer, never older, than what ver promises, so it is safe.
func (c *currentCache) put(key [3]string, ver int64, e cachedCurrent) {
	c.entriesMu.Lock()
	defer c.entriesMu.Unlock()
	if c.at != ver || len(c.entries) >= maxCachedCurrent {
		c.entries = map[[3]string]cachedCurrent{}
		c.at = ver
	}
	c.entries[key] = e
}

// copies returns copies, so callers may change what they get.
func (e cachedCurrent) copies() (*tokenward.Secret, *tokenward.SecretVersion) {
	s, v := *e.s, *e.v
	return &s, &v
}
