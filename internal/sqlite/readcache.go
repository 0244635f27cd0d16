package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	"github.com/tokenward/tokenward"
)

// currentCache keeps recently read current secrets (metadata and the sealed
// current version, never plaintext) so a read needs no SQL at all. Entries
// are trusted only while the clock's generation is unchanged.
type currentCache struct {
	clock changeClock

	mu      sync.RWMutex
	at      uint64 // generation the entries were read at
	entries map[[3]string]cachedCurrent
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

type cachedCurrent struct {
	s *tokenward.Secret
	v *tokenward.SecretVersion
}

const maxCachedCurrent = 10_000

func (db *DB) openCurrentCache(ctx context.Context) error {
	clock, err := db.openWALClock(ctx)
	if err != nil {
		return err
	}
	db.current = &currentCache{clock: clock, entries: map[[3]string]cachedCurrent{}}
	return nil
}

func (c *currentCache) close() {
	if c != nil {
		c.clock.close()
	}
}

// get returns a cached entry read at generation gen.
func (c *currentCache) get(key [3]string, gen uint64) (cachedCurrent, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.at != gen {
		return cachedCurrent{}, false
	}
	e, ok := c.entries[key]
	return e, ok
}

// put stores an entry read after the clock said gen. An entry read later
// than gen is newer, never older, than what gen promises, so it is safe.
func (c *currentCache) put(key [3]string, gen uint64, e cachedCurrent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at != gen || len(c.entries) >= maxCachedCurrent {
		c.entries = map[[3]string]cachedCurrent{}
		c.at = gen
	}
	c.entries[key] = e
}

// copies returns copies, so callers may change what they get.
func (e cachedCurrent) copies() (*tokenward.Secret, *tokenward.SecretVersion) {
	s, v := *e.s, *e.v
	return &s, &v
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
	if err := pin.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		pin.Close()
		return nil, fmt.Errorf("journal mode %q, %v: the read cache needs WAL", mode, err)
	}
	shm, err := os.Open(db.Path + "-shm")
	if err != nil {
		pin.Close()
		return nil, err
	}
	c := &walClock{shm: shm, pin: pin}
	if _, ok := c.generation(); !ok {
		c.close()
		return nil, fmt.Errorf("%s: not a WAL index this SQLite version writes", shm.Name())
	}
	return c, nil
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
