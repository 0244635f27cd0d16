package sqlite

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
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

func auditBatch(from int64, n int) []*tokenward.AuditEntry {
	var es []*tokenward.AuditEntry
	for i := range n {
		es = append(es, &tokenward.AuditEntry{Seq: from + int64(i), Time: time.Unix(1700000000, 0), Action: "secret.read",
			Outcome: tokenward.OutcomeAllowed, PrevHash: strings.Repeat("a", 64), Hash: strings.Repeat("b", 64)})
	}
	return es
}

// TestAuditCommitsKeepTheClock: an audit batch of this process does not
// move the change clock (the read cache holds no audit entries), a write
// of a secret does, and a commit by another handle is never absorbed into
// a later audit batch.
func TestAuditCommitsKeepTheClock(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tokenward.db")
	db := NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	as := NewAuditStore(db, AuditSyncNormal)
	if err := as.Open(); err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	other := NewDB(path) // another process, as far as the WAL index tells
	if err := other.Open(); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := db.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{"prod"}, CreatedAt: time.Unix(0, 0)}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	gen := func() uint64 {
		t.Helper()
		g, ok := db.Generation()
		if !ok {
			t.Fatal("the clock cannot tell")
		}
		return g
	}
	seq := int64(1)
	steps := []struct {
		name  string
		do    func() error
		moves bool
	}{
		{"an audit batch", func() error { seq += 5; return as.AppendAuditBatch(ctx, auditBatch(seq-5, 5)) }, false},
		{"another audit batch", func() error { seq += 40; return as.AppendAuditBatch(ctx, auditBatch(seq-40, 40)) }, false},
		{"a secret written here", func() error {
			return db.PutSecret(ctx, &tokenward.Secret{Project: "p", Env: "prod", Name: "K"}, 0, &tokenward.SecretVersion{Version: 1, Ciphertext: []byte("c")})
		}, true},
		{"a secret written by another handle, then an audit batch", func() error {
			if err := other.PutSecret(ctx, &tokenward.Secret{Project: "p", Env: "prod", Name: "K"}, 1, &tokenward.SecretVersion{Version: 2, Ciphertext: []byte("d")}); err != nil {
				return err
			}
			seq += 3
			return as.AppendAuditBatch(ctx, auditBatch(seq-3, 3))
		}, true},
		{"an audit batch again", func() error { seq += 2; return as.AppendAuditBatch(ctx, auditBatch(seq-2, 2)) }, false},
		{"a signed checkpoint", func() error {
			return db.AppendCheckpoint(ctx, &audit.Checkpoint{Seq: seq - 1, Hash: strings.Repeat("b", 64), Time: time.Unix(1, 0), KeyID: "k", Signature: []byte("s")})
		}, false},
		{"a signed checkpoint through the audit store", func() error {
			return as.AppendCheckpoint(ctx, &audit.Checkpoint{Seq: seq - 2, Hash: strings.Repeat("c", 64), Time: time.Unix(1, 0), KeyID: "k", Signature: []byte("s")})
		}, false},
		{"a unique index on checkpoints (the next steps' refusals)", func() error {
			_, err := db.write.ExecContext(ctx, `CREATE UNIQUE INDEX test_cp_seq ON audit_checkpoints (seq)`)
			return err
		}, true},
		{"a checkpoint refused and rolled back (moves: the clock cannot tell what a failure left)", func() error {
			if err := db.AppendCheckpoint(ctx, &audit.Checkpoint{Seq: seq - 1, Hash: strings.Repeat("b", 64), Time: time.Unix(1, 0), KeyID: "k", Signature: []byte("s")}); err == nil {
				return errors.New("a second checkpoint at one seq was stored")
			}
			return nil
		}, true},
		{"a checkpoint refused through the audit store", func() error {
			if err := as.AppendCheckpoint(ctx, &audit.Checkpoint{Seq: seq - 1, Hash: strings.Repeat("b", 64), Time: time.Unix(1, 0), KeyID: "k", Signature: []byte("s")}); err == nil {
				return errors.New("a second checkpoint at one seq was stored")
			}
			return nil
		}, true},
	}
	for _, s := range steps {
		g := gen()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if moved := gen() != g; moved != s.moves {
			t.Errorf("%s: clock moved %v; want %v", s.name, moved, s.moves)
		}
	}
	// What the cache serves after all that is the other handle's write.
	_, v, err := db.CurrentSecret(ctx, "p", "prod", "K")
	if err != nil || v.Version != 2 {
		t.Fatalf("current secret: got %+v, %v; want version 2", v, err)
	}
}

// TestOwnCommitAbsorbsOnlyItself: while an own commit's window is open, the
// header that follows the one its transaction found (change counter one
// more) is taken as seen without moving the clock — by a reader or by
// endOwnCommit, whichever reads it first — and nothing else is.
func TestOwnCommitAbsorbsOnlyItself(t *testing.T) {
	hdr := func(change uint32, salt byte) [walHeaderSize]byte {
		var h [walHeaderSize]byte
		binary.NativeEndian.PutUint32(h[0:4], walVersion)
		binary.NativeEndian.PutUint32(h[8:12], change)
		h[12] = 1
		h[40] = salt
		return h
	}
	before := hdr(7, 0)
	for _, tc := range []struct {
		name      string
		after     [walHeaderSize]byte
		readFirst bool // a reader reads the header before endOwnCommit
		committed bool
		moves     bool // the clock moved by the end
	}{
		{"exactly our commit", hdr(8, 1), false, true, false},
		{"exactly our commit, seen by a reader first", hdr(8, 1), true, true, false},
		{"our commit and another", hdr(9, 2), false, true, true},
		{"our commit and another, seen by a reader first", hdr(9, 2), true, true, true},
		{"no commit at all", before, false, true, false},
		{"a failed commit", before, false, false, true},
		{"a failed commit, then another's", hdr(8, 1), true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x-shm")
			page := make([]byte, os.Getpagesize())
			copy(page, tc.after[:])
			copy(page[walHeaderSize:], tc.after[:])
			if err := os.WriteFile(path, page, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c := &walClock{shm: f, hdr: before, gen: 1, own: true, ownFrom: before}
			if tc.readFirst {
				c.generation()
			}
			c.endOwnCommit(tc.committed)
			g, ok := c.generation()
			if !ok {
				t.Fatal("the clock cannot tell")
			}
			if moved := g != 1; moved != tc.moves {
				t.Errorf("moved %v (generation %d); want %v", moved, g, tc.moves)
			}
			if c.own {
				t.Error("the window is still open after endOwnCommit")
			}
		})
	}
	// With the window closed, the next commit moves the clock.
	path := filepath.Join(t.TempDir(), "x-shm")
	page := make([]byte, os.Getpagesize())
	next := hdr(8, 1)
	copy(page, next[:])
	copy(page[walHeaderSize:], next[:])
	if err := os.WriteFile(path, page, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &walClock{shm: f, hdr: before, gen: 1}
	if g, _ := c.generation(); g == 1 {
		t.Error("a commit outside any own commit's window did not move the clock")
	}
}
