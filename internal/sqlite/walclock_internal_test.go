package sqlite

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWALClockReadsTheMapping: a store's clock reads the WAL-index header
// from its mapping of the -shm file, and what it reads there is what a
// pread reads.
func TestWALClockReadsTheMapping(t *testing.T) {
	db := NewDB(filepath.Join(t.TempDir(), "tokenward.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.clock == nil || db.clock.mem == nil {
		t.Fatal("the clock did not map the -shm file")
	}
	var mapped, read [2 * walHeaderSize]byte
	if !db.clock.readMapped(&mapped) {
		t.Fatal("reading the mapping failed")
	}
	if n, err := db.clock.shm.ReadAt(read[:], 0); n != len(read) || err != nil {
		t.Fatal(n, err)
	}
	if mapped != read {
		t.Errorf("mapped header %x; pread %x", mapped, read)
	}
}

// TestWALClockSurvivesAShrunkFile: when the mapped file shrinks under the
// mapping, a read faults (SIGBUS); the clock recovers and says it cannot
// tell (so caches are bypassed) instead of crashing the server.
func TestWALClockSurvivesAShrunkFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x-shm")
	if err := os.WriteFile(path, make([]byte, os.Getpagesize()), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, os.Getpagesize(), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	c := &walClock{shm: f, mem: mem}
	defer syscall.Munmap(mem)
	var b [2 * walHeaderSize]byte
	if !c.readMapped(&b) {
		t.Fatal("reading a whole page failed")
	}
	if _, ok := c.generation(); ok {
		t.Error("a zeroed header gave a generation; want none (not a WAL index)")
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if c.readMapped(&b) {
		t.Error("reading past the end of the shrunk file succeeded; want the fault recovered as a failure")
	}
	if _, ok := c.generation(); ok {
		t.Error("got a generation from a shrunk file; want none")
	}
}
