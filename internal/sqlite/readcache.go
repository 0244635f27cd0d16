package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/readcache"
)

// The read cache (internal/readcache) on SQLite's change clock, walClock.

func (db *DB) openCurrentCache(ctx context.Context) error {
	clock, err := db.openWALClock(ctx)
	if err != nil {
		return err
	}
	db.clock = clock
	db.Cache = readcache.New(db, readcache.Loaders{CurrentSecret: db.currentSecret, Secrets: db.secrets, EnvSecrets: db.envSecrets, Token: db.token})
	return nil
}

var _ tokenward.ChangeClock = (*DB)(nil)

// Generation implements tokenward.ChangeClock with the WAL index header:
// it moves with every commit, by any connection or process, before the
// commit returns.
func (db *DB) Generation() (uint64, bool) {
	if db.clock == nil {
		return 0, false
	}
	return db.clock.generation()
}

// walClock reads SQLite's WAL-index header (the first bytes of the -shm
// file, https://sqlite.org/walformat.html#the_wal_index_file_format): every
// commit in WAL mode, by any connection or process, rewrites it before the
// commit returns — the frame count, the checksum of the last frame and,
// when the log restarts, the salts all change — because that header is how
// readers learn of commits. So a commit is seen by the first read that
// starts after it: there is no staleness window, for this process's writes
// or another's. A copy of 96 bytes from a shared read-only mapping of the
// file (a pread when it cannot be mapped), no SQL, no lock shared with other
// readers: PRAGMA data_version, which it replaces, was a query through
// database/sql on one connection, serialising every read.
type walClock struct {
	shm *os.File
	// mem is the first page of shm mapped shared and read-only, so a read
	// of the header is two copies from memory rather than a pread (which
	// was 4% of a cached read's CPU); nil when mapping failed, and then
	// generation reads with pread.
	mem []byte
	// pin is a read connection held open (after reading once, so it has
	// the WAL index open). While any connection of this process is open,
	// SQLite cannot delete or truncate the -shm file under shm: only the
	// last connection to close does.
	pin *sql.Conn

	mu      sync.Mutex
	hdr     [walHeaderSize]byte // the header last seen
	gen     uint64
	own     bool                // an own commit's window is open (beginOwnCommit)
	ownFrom [walHeaderSize]byte // the header its transaction found
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
	var mode, file string
	var n int
	err = pin.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	if err == nil { // a read: the connection has the WAL index open after it
		err = pin.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n)
	}
	if err != nil || mode != "wal" {
		pin.Close()
		return nil, fmt.Errorf("journal mode %q, %v: the read cache needs WAL", mode, err)
	}
	// The file SQLite opened, which names its -shm file: the link's target
	// when db.Path is a symbolic link, not db.Path.
	if err := pin.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		pin.Close()
		return nil, err
	}
	db.file = file
	shm, err := os.Open(file + "-shm")
	if err != nil {
		pin.Close()
		return nil, err
	}
	c := &walClock{shm: shm, pin: pin}
	if mem, err := syscall.Mmap(int(shm.Fd()), 0, os.Getpagesize(), syscall.PROT_READ, syscall.MAP_SHARED); err == nil {
		c.mem = mem
	}
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
	if c.mem != nil {
		syscall.Munmap(c.mem)
	}
	c.shm.Close()
	c.pin.Close()
}

// readHeader reads both copies of the WAL-index header into b: from the
// mapping, or with pread.
func (c *walClock) readHeader(b *[2 * walHeaderSize]byte) bool {
	if c.mem != nil && c.readMapped(b) {
		return true
	}
	n, err := c.shm.ReadAt(b[:], 0)
	return n == len(b) && err == nil
}

// readMapped copies the first copy, then the second (the reverse of the
// order writers write them in, as SQLite's readers do). A mapping past the
// end of a file that shrank faults (SIGBUS): that is a recovered panic
// here, not a crash, and the caller falls back to pread, which sees the
// short file.
func (c *walClock) readMapped(b *[2 * walHeaderSize]byte) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	copy(b[:walHeaderSize], c.mem[:walHeaderSize])
	copy(b[walHeaderSize:], c.mem[walHeaderSize:2*walHeaderSize])
	return true
}

func (c *walClock) generation() (uint64, bool) {
	var b [2 * walHeaderSize]byte
	if !c.readHeader(&b) {
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
		if !c.ownCommitted(hdr) {
			c.gen++
		}
		c.hdr = hdr
	}
	return c.gen, true
}

// A commit whose writes no cached read depends on — an audit batch: the
// read cache holds secrets, environments and tokens, never audit entries —
// need not empty the cache, though it moves the WAL index like any other.
// Its transaction calls beginOwnCommit after BEGIN IMMEDIATE and
// endOwnCommit after COMMIT. Holding the write lock, no other connection or
// process can commit in between, and SQLite adds one to the header's change
// counter (iChange) per commit: so between the two calls, a header whose
// counter is one more than the one the transaction found is this commit's,
// and the clock — whichever read sees it first, a reader's or
// endOwnCommit's — takes it as seen without moving. Any other change moves
// the clock as usual: another commit after ours (two more), or one after a
// failed COMMIT (endOwnCommit then moves the clock itself; the one window
// left is between an I/O error in COMMIT, which releases the lock, and that
// move). Before this, on a busy server every audit batch (every
// --audit-ingest-delay) emptied the cache, and the environment fetches
// after it went to SQL.

// ownCommit runs fn in a write transaction (BEGIN IMMEDIATE) whose commit
// the change clock absorbs: for a write no cached read depends on.
func (db *DB) ownCommit(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	clock := db.clock
	own := clock != nil && clock.beginOwnCommit()
	if err := fn(tx); err != nil {
		if own { // while the write lock is held: no other commit yet
			clock.endOwnCommit(false)
		}
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	if own {
		clock.endOwnCommit(err == nil)
	}
	return err
}

// beginOwnCommit brings the clock up to date inside the write transaction
// and opens the window in which that transaction's commit is absorbed.
func (c *walClock) beginOwnCommit() bool {
	if _, ok := c.generation(); !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.own, c.ownFrom = true, c.hdr
	return true
}

// endOwnCommit closes the window: after a COMMIT that succeeded it reads the
// header once more (absorbing the commit if no reader did); after a
// failure it moves the clock.
func (c *walClock) endOwnCommit(committed bool) {
	if committed {
		c.generation()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.own = false
	if !committed {
		c.gen++
	}
}

// ownCommitted reports whether hdr, replacing the header last seen, is the
// open own commit's and nothing else (under mu).
func (c *walClock) ownCommitted(hdr [walHeaderSize]byte) bool {
	return c.own && c.hdr == c.ownFrom && walChange(hdr) == walChange(c.ownFrom)+1
}

// walChange is a WAL-index header's change counter (WalIndexHdr.iChange),
// which every commit adds one to.
func walChange(h [walHeaderSize]byte) uint32 { return binary.NativeEndian.Uint32(h[8:12]) }
