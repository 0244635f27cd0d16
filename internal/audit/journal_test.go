package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// memStore is an in-memory BatchStore and StoreSyncer whose failures a test
// switches on and off. It checks what it is given the way a database with
// a unique seq and the broker's invariants would: consecutive seqs
// (ECONFLICT otherwise), each entry linked to the one before and matching
// its hash.
type memStore struct {
	mu      sync.Mutex
	entries []*tokenward.AuditEntry
	cps     []*Checkpoint

	fail    error         // appends are refused with it while set
	plan    []batchStep   // what the next AppendAuditBatch calls do, in order
	gate    chan struct{} // appends wait until it is closed (nil: no wait)
	entered chan struct{} // told (without blocking) when an append waits at the gate
	failSeq int64         // AppendAudit refuses this seq once with errDiskGone

	batchCalls, appendCalls, syncCalls int
}

// batchStep is one planned AppendAuditBatch outcome: commit stores the batch
// first (a commit whose acknowledgement is lost when err is set).
type batchStep struct {
	commit bool
	err    error
}

var errAckLost = errors.New("connection reset before the commit was acknowledged")

func (s *memStore) preload(es ...*tokenward.AuditEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		s.entries = append(s.entries, cloneEntry(e))
	}
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// hold makes appends wait until release.
func (s *memStore) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.entered = make(chan struct{}), make(chan struct{}, 1)
}

func (s *memStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// waitGate blocks at the gate, if there is one.
func (s *memStore) waitGate(ctx context.Context) error {
	s.mu.Lock()
	gate, entered := s.gate, s.entered
	s.mu.Unlock()
	if gate == nil {
		return nil
	}
	select {
	case entered <- struct{}{}:
	default:
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *memStore) appendLocked(es []*tokenward.AuditEntry) error {
	seq, hash := int64(0), GenesisHash
	if n := len(s.entries); n > 0 {
		seq, hash = s.entries[n-1].Seq, s.entries[n-1].Hash
	}
	for _, e := range es {
		if e.Seq != seq+1 {
			return tokenward.Errorf(tokenward.ECONFLICT, "audit entry seq %d; want %d", e.Seq, seq+1)
		}
		if e.PrevHash != hash || HashEntry(e) != e.Hash {
			return tokenward.Errorf(tokenward.EINVALID, "audit entry %d is not chained", e.Seq)
		}
		seq, hash = e.Seq, e.Hash
	}
	for _, e := range es {
		s.entries = append(s.entries, cloneEntry(e))
	}
	return nil
}

func (s *memStore) AppendAuditBatch(ctx context.Context, es []*tokenward.AuditEntry) error {
	s.mu.Lock()
	s.batchCalls++
	s.mu.Unlock()
	if err := s.waitGate(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	step := batchStep{commit: true}
	if len(s.plan) > 0 {
		step, s.plan = s.plan[0], s.plan[1:]
	}
	if !step.commit {
		return step.err
	}
	if err := s.appendLocked(es); err != nil {
		return err
	}
	return step.err
}

func (s *memStore) AppendAudit(ctx context.Context, e *tokenward.AuditEntry) error {
	s.mu.Lock()
	s.appendCalls++
	s.mu.Unlock()
	if err := s.waitGate(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.failSeq != 0 && e.Seq == s.failSeq {
		s.failSeq = 0
		return errDiskGone
	}
	return s.appendLocked([]*tokenward.AuditEntry{e})
}

func (s *memStore) LastAudit(ctx context.Context) (*tokenward.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return nil, nil
	}
	return cloneEntry(s.entries[len(s.entries)-1]), nil
}

func (s *memStore) AppendCheckpoint(ctx context.Context, cp *Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cps = append(s.cps, cp)
	return nil
}

func (s *memStore) SyncAudit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncCalls++
	return nil
}

func (s *memStore) syncs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncCalls
}

func (s *memStore) stored() []*tokenward.AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

// oneByOneStore is a memStore seen as a plain Store: the broker appends
// entry by entry.
type oneByOneStore struct{ m *memStore }

func (s oneByOneStore) AppendAudit(ctx context.Context, e *tokenward.AuditEntry) error {
	return s.m.AppendAudit(ctx, e)
}
func (s oneByOneStore) LastAudit(ctx context.Context) (*tokenward.AuditEntry, error) {
	return s.m.LastAudit(ctx)
}
func (s oneByOneStore) AppendCheckpoint(ctx context.Context, cp *Checkpoint) error {
	return s.m.AppendCheckpoint(ctx, cp)
}

// recordingSink keeps what it is given.
type recordingSink struct {
	mu sync.Mutex
	es []*tokenward.AuditEntry
}

func (s *recordingSink) Name() string { return "recording" }
func (s *recordingSink) Write(ctx context.Context, e *tokenward.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.es = append(s.es, cloneEntry(e))
	return nil
}
func (s *recordingSink) Close() error { return nil }

func (s *recordingSink) seqs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return entrySeqs(s.es)
}

func entrySeqs(es []*tokenward.AuditEntry) []int64 {
	seqs := []int64{}
	for _, e := range es {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func seqsFrom(from, to int64) []int64 {
	s := []int64{}
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// testJournal returns a journal at path that stores entries within a
// millisecond.
func testJournal(path string) *Journal {
	return &Journal{Path: path, IngestDelay: time.Millisecond, SyncEvery: time.Millisecond}
}

// newJournalBroker returns a broker over store with j, not yet open; it is
// closed when the test ends.
func newJournalBroker(t *testing.T, store Store, j *Journal, signer *Signer, sinks ...Sink) *Broker {
	t.Helper()
	b := NewBroker(store, signer, sinks...)
	b.Now, b.Sleep, b.Journal = newTestClock().Now, noSleep, j
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func mustOpenJournalBroker(t *testing.T, store Store, j *Journal, sinks ...Sink) *Broker {
	t.Helper()
	b := newJournalBroker(t, store, j, nil, sinks...)
	if err := b.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRecord(t *testing.T, b *Broker, i int) *tokenward.AuditEntry {
	t.Helper()
	e := newEntry(i)
	if err := b.Record(t.Context(), e); err != nil {
		t.Fatalf("record %d: %v", i, err)
	}
	return e
}

func mustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustWriteFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// mustChain chains n entries from newEntry(from+1) on: chains with another
// from hold other hashes.
func mustChain(tb testing.TB, n, from int) []*tokenward.AuditEntry {
	tb.Helper()
	c, err := NewChain(nil)
	if err != nil {
		tb.Fatal(err)
	}
	clock := newTestClock()
	var es []*tokenward.AuditEntry
	for i := from + 1; i <= from+n; i++ {
		e := newEntry(i)
		e.Time = clock.Now()
		if err := c.Append(e, func(*tokenward.AuditEntry) error { return nil }); err != nil {
			tb.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

// checkTrail fails unless es is a valid chain of seqs 1..n.
func checkTrail(t *testing.T, es []*tokenward.AuditEntry, n int) {
	t.Helper()
	if got := entrySeqs(es); !slices.Equal(got, seqsFrom(1, int64(n))) {
		t.Fatalf("got stored seqs %v; want 1..%d once each", got, n)
	}
	prev := GenesisHash
	for _, e := range es {
		if e.PrevHash != prev || HashEntry(e) != e.Hash {
			t.Fatalf("got entry %d with prev %s hash %s; want prev %s and its own hash", e.Seq, e.PrevHash, e.Hash, prev)
		}
		prev = e.Hash
	}
}

func mustFlush(t *testing.T, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func frameBytes(e *tokenward.AuditEntry) []byte { return appendFrame(nil, Canonical(e)) }

func TestParseFrames(t *testing.T) {
	p1, p2, p3 := []byte("first payload"), []byte("second"), bytes.Repeat([]byte{0xA5}, 300)
	f1, f2, f3 := appendFrame(nil, p1), appendFrame(nil, p2), appendFrame(nil, p3)
	good := slices.Concat(f1, f2, f3)
	badCRC := slices.Clone(f2)
	badCRC[len(badCRC)-1] ^= 1
	header := func(n, sum uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, n), sum)
	}
	huge := header(maxFrame+1, 0)

	tests := []struct {
		name      string
		body      []byte
		want      [][]byte
		wantValid int
		wantErr   bool
	}{
		{name: "empty", body: nil, want: nil, wantValid: 0},
		{name: "one frame", body: f1, want: [][]byte{p1}, wantValid: len(f1)},
		{name: "three frames", body: good, want: [][]byte{p1, p2, p3}, wantValid: len(good)},
		{name: "partial header", body: slices.Concat(f1, f2, f3[:5]), want: [][]byte{p1, p2}, wantValid: len(f1) + len(f2)},
		{name: "header only", body: slices.Concat(f1, f3[:8]), want: [][]byte{p1}, wantValid: len(f1)},
		{name: "frame longer than the rest", body: slices.Concat(f1, f3[:len(f3)-1]), want: [][]byte{p1}, wantValid: len(f1)},
		{name: "last frame bad checksum", body: slices.Concat(f1, badCRC), want: [][]byte{p1}, wantValid: len(f1)},
		{name: "trailing zeros", body: slices.Concat(f1, f2, make([]byte, 64)), want: [][]byte{p1, p2}, wantValid: len(f1) + len(f2)},
		{name: "fewer zeros than a header", body: slices.Concat(f1, make([]byte, 3)), want: [][]byte{p1}, wantValid: len(f1)},
		{name: "only zeros", body: make([]byte, 40), want: nil, wantValid: 0},
		// A group write of several frames cut by a power failure: the
		// first pages kept, zeros after them.
		{name: "frame cut by zeros, zeros after it", body: slices.Concat(f1, f3[:100], make([]byte, len(f3)-100), make([]byte, len(f2))), want: [][]byte{p1}, wantValid: len(f1)},
		{name: "bad checksum then a frame", body: slices.Concat(f1, badCRC, f3), wantErr: true},
		{name: "frame cut by zeros, then a frame", body: slices.Concat(f1, f3[:100], make([]byte, len(f3)-100), f2), wantErr: true},
		{name: "bad checksum first", body: slices.Concat(badCRC, f1), wantErr: true},
		{name: "zero length then data", body: slices.Concat(f1, header(0, 0), f2), wantErr: true},
		{name: "zero length with a checksum", body: slices.Concat(f1, header(0, 7), make([]byte, 8)), wantErr: true},
		{name: "length past maxFrame, all of it there", body: slices.Concat(f1, huge, make([]byte, maxFrame+1)), wantErr: true},
		// No append writes a length above maxFrame: corruption, not a tear.
		{name: "length past maxFrame with frames after", body: slices.Concat(f1, huge, f2, f3), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, valid, err := parseFrames(tt.body)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %d payloads, valid %d; want an error", len(got), valid)
				}
				if code := tokenward.ErrorCode(err); code != tokenward.EINVALID {
					t.Errorf("got code %q; want %q", code, tokenward.EINVALID)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v; want no error", err)
			}
			if valid != tt.wantValid {
				t.Errorf("got valid %d; want %d", valid, tt.wantValid)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d payloads; want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("got payload %d %q; want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseJournal(t *testing.T) {
	es := mustChain(t, 4, 0)
	good := journalBytes(es[:3]...)
	f4 := frameBytes(es[3])
	notAnEntry := appendFrame(nil, []byte("tokenward-audit-entry-v1\x00 but nothing else"))

	tests := []struct {
		name     string
		data     []byte
		want     int // entries: es[:want]
		wantTorn int
		wantErr  bool
	}{
		{name: "empty file", data: nil},
		{name: "magic only", data: []byte(journalMagic)},
		{name: "three entries", data: good, want: 3},
		{name: "torn tail", data: slices.Concat(good, f4[:len(f4)/2]), want: 3, wantTorn: len(f4) / 2},
		{name: "torn header", data: slices.Concat(good, f4[:6]), want: 3, wantTorn: 6},
		{name: "trailing zeros", data: slices.Concat(good, make([]byte, 100)), want: 3, wantTorn: 100},
		{name: "torn magic", data: []byte(journalMagic[:10]), wantTorn: 10},
		{name: "torn magic of one byte", data: []byte(journalMagic[:1]), wantTorn: 1},
		{name: "wrong magic", data: slices.Concat([]byte("tokenward-audit-journal-v2\n"), good[len(journalMagic):]), wantErr: true},
		{name: "short and not the magic", data: []byte("hello"), wantErr: true},
		{name: "corrupt frame", data: slices.Concat(good[:len(good)-1], []byte{good[len(good)-1] ^ 1}, f4), wantErr: true},
		{name: "a frame that is not an entry", data: slices.Concat(good, notAnEntry), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, torn, err := parseJournal(tt.data)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %d entries; want an error", len(got))
				}
				if code := tokenward.ErrorCode(err); code != tokenward.EINVALID {
					t.Errorf("got code %q; want %q", code, tokenward.EINVALID)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v; want no error", err)
			}
			if torn != tt.wantTorn {
				t.Errorf("got torn %d; want %d", torn, tt.wantTorn)
			}
			if len(got) != tt.want {
				t.Fatalf("got %d entries; want %d", len(got), tt.want)
			}
			for i, e := range got {
				if d := entryDiff(e, es[i]); d != "" {
					t.Errorf("entry %d: %s", i, d)
				}
				if e.Hash != es[i].Hash {
					t.Errorf("got entry %d hash %s; want %s", i, e.Hash, es[i].Hash)
				}
			}
		})
	}
}

func skipWithoutFlock(t *testing.T) {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1":
		t.Skip("no advisory lock on " + runtime.GOOS)
	}
}

func TestOpenJournalFile(t *testing.T) {
	es := mustChain(t, 3, 0)
	t.Run("creates", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.journal")
		f, got, torn, err := openJournalFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.close()
		if len(got) != 0 || torn != 0 {
			t.Errorf("got %d entries, torn %d; want none", len(got), torn)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Errorf("got mode %v; want 0600", fi.Mode().Perm())
		}
		if data := mustReadFile(t, path); string(data) != journalMagic {
			t.Errorf("got contents %q; want the magic %q", data, journalMagic)
		}
	})
	t.Run("one holder", func(t *testing.T) {
		skipWithoutFlock(t)
		path := filepath.Join(t.TempDir(), "audit.journal")
		f, _, _, err := openJournalFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if f2, _, _, err := openJournalFile(path); !errors.Is(err, ErrJournalInUse) {
			if f2 != nil {
				f2.close()
			}
			t.Fatalf("got %v; want ErrJournalInUse while the journal is open", err)
		}
		if err := f.close(); err != nil {
			t.Fatal(err)
		}
		f, _, _, err = openJournalFile(path)
		if err != nil {
			t.Fatalf("got %v reopening after close; want the journal", err)
		}
		f.close()
	})
	t.Run("keeps entries and appends after them", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.journal")
		mustWriteFile(t, path, journalBytes(es[:2]...))
		f, got, torn, err := openJournalFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || torn != 0 {
			t.Fatalf("got %d entries, torn %d; want 2, 0", len(got), torn)
		}
		if err := f.append(frameBytes(es[2])); err != nil {
			t.Fatal(err)
		}
		f.close()
		if data, want := mustReadFile(t, path), journalBytes(es...); !bytes.Equal(data, want) {
			t.Errorf("got %d bytes; want the 3 frames, %d bytes", len(data), len(want))
		}
	})
	t.Run("cuts a torn tail", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.journal")
		valid := journalBytes(es[:2]...)
		f3 := frameBytes(es[2])
		mustWriteFile(t, path, slices.Concat(valid, f3[:len(f3)-7]))
		f, got, torn, err := openJournalFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || torn != len(f3)-7 {
			t.Errorf("got %d entries, torn %d; want 2, %d", len(got), torn, len(f3)-7)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(len(valid)) {
			t.Errorf("got size %d after open; want the valid prefix, %d", fi.Size(), len(valid))
		}
		// The next frame goes where the torn one began.
		if err := f.append(f3); err != nil {
			t.Fatal(err)
		}
		f.close()
		if data := mustReadFile(t, path); !bytes.Equal(data, journalBytes(es...)) {
			t.Errorf("got %x; want the three whole frames", data)
		}
	})
	t.Run("torn magic", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.journal")
		mustWriteFile(t, path, []byte(journalMagic[:12]))
		f, got, _, err := openJournalFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f.close()
		if len(got) != 0 {
			t.Errorf("got %d entries; want none", len(got))
		}
		if data := mustReadFile(t, path); string(data) != journalMagic {
			t.Errorf("got %q; want the magic rewritten", data)
		}
	})
	t.Run("refuses corruption and keeps the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.journal")
		data := journalBytes(es...)
		data[len(journalMagic)+frameHeaderSize+3] ^= 0x40 // in the first payload
		mustWriteFile(t, path, data)
		for i := range 2 { // the second time: no lock left behind
			f, _, _, err := openJournalFile(path)
			if err == nil {
				f.close()
				t.Fatal("got a journal; want an error")
			}
			if errors.Is(err, ErrJournalInUse) || tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Fatalf("attempt %d: got %v; want the corruption reported", i+1, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("got %q; want the path in it", err)
			}
		}
		if got := mustReadFile(t, path); !bytes.Equal(got, data) {
			t.Error("got the corrupt journal changed; want it kept for inspection")
		}
	})
}

// TestJournalRecordFlush: entries recorded from many goroutines reach the
// store once each, chained in seq order, and the sinks in that order.
func TestJournalRecordFlush(t *testing.T) {
	store := &memStore{}
	sink := &recordingSink{}
	path := filepath.Join(t.TempDir(), "audit.journal")
	b := mustOpenJournalBroker(t, store, testJournal(path), sink)
	const goroutines, each = 4, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if err := b.Record(t.Context(), newEntry(g*each+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	mustFlush(t, b)
	n := goroutines * each
	checkTrail(t, store.stored(), n)
	if st := b.Stats(); st.JournalPending != 0 || st.Recorded != int64(n) || st.IngestFailures != 0 {
		t.Errorf("got pending %d, recorded %d, ingest failures %d; want 0, %d, 0", st.JournalPending, st.Recorded, st.IngestFailures, n)
	}
	if seq, _ := b.chain.Last(); seq != int64(n) {
		t.Errorf("got chain at %d; want %d", seq, n)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := sink.seqs(); !slices.Equal(got, seqsFrom(1, int64(n))) {
		t.Errorf("got sink seqs %v; want 1..%d in order", got, n)
	}
	if data := mustReadFile(t, path); string(data) != journalMagic {
		t.Errorf("got a journal of %d bytes after Close; want only the magic", len(data))
	}
	if store.syncs() == 0 {
		t.Error("got no SyncAudit; want the store synced before the journal is emptied")
	}
}

// TestJournalStoreFailure: from the first batch the store refuses, Record
// refuses (fail-closed) and the chain stays; the entries answered before
// are stored once each when the store is back.
func TestJournalStoreFailure(t *testing.T) {
	store := &memStore{}
	sink := &recordingSink{}
	b := mustOpenJournalBroker(t, store, testJournal(filepath.Join(t.TempDir(), "audit.journal")), sink)
	for i := 1; i <= 3; i++ {
		mustRecord(t, b, i)
	}
	mustFlush(t, b)

	// Entries 4 and 5 are answered while their batch waits at the gate,
	// then the store refuses it.
	store.setFail(errDiskGone)
	store.hold()
	mustRecord(t, b, 4)
	mustRecord(t, b, 5)
	store.release()
	if err := b.Flush(t.Context()); !errors.Is(err, errDiskGone) {
		t.Fatalf("got %v from Flush; want the store's error", err)
	}
	if err := b.Record(t.Context(), newEntry(6)); !errors.Is(err, errDiskGone) {
		t.Fatalf("got %v; want Record refused with the store's error", err)
	}
	if seq, _ := b.chain.Last(); seq != 5 {
		t.Errorf("got chain at %d after a refused entry; want 5", seq)
	}
	st := b.Stats()
	if st.IngestFailures < 1 || st.PrimaryFailures < 1 || st.JournalPending != 2 {
		t.Errorf("got ingest failures %d, primary failures %d, pending %d; want >= 1, >= 1, 2", st.IngestFailures, st.PrimaryFailures, st.JournalPending)
	}

	store.setFail(nil)
	mustFlush(t, b)
	checkTrail(t, store.stored(), 5)
	e := mustRecord(t, b, 6)
	if e.Seq != 6 {
		t.Errorf("got seq %d; want 6", e.Seq)
	}
	mustFlush(t, b)
	checkTrail(t, store.stored(), 6)
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := sink.seqs(); !slices.Equal(got, seqsFrom(1, 6)) {
		t.Errorf("got sink seqs %v; want 1..6 once each", got)
	}
}

// TestJournalAmbiguousCommit: the store commits a batch but the
// acknowledgement is lost; the retry finds the entries stored and goes on.
func TestJournalAmbiguousCommit(t *testing.T) {
	store := &memStore{plan: []batchStep{{commit: true, err: errAckLost}}}
	sink := &recordingSink{}
	b := mustOpenJournalBroker(t, store, testJournal(filepath.Join(t.TempDir(), "audit.journal")), sink)
	store.hold()
	for i := 1; i <= 5; i++ {
		mustRecord(t, b, i)
	}
	store.release()
	mustFlush(t, b)
	checkTrail(t, store.stored(), 5)
	mustRecord(t, b, 6)
	mustFlush(t, b)
	checkTrail(t, store.stored(), 6)
	if st := b.Stats(); st.Recorded != 6 {
		t.Errorf("got recorded %d; want 6", st.Recorded)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := sink.seqs(); !slices.Equal(got, seqsFrom(1, 6)) {
		t.Errorf("got sink seqs %v; want 1..6 once each", got)
	}
}

// TestJournalPartialBatchNotResent: a batch the store took in part (a
// reconciled lost acknowledgement, or a store that appends one by one)
// and then refused: the part already stored must not reach the sinks, or
// be counted, a second time when the batch is retried.
func TestJournalPartialBatchNotResent(t *testing.T) {
	tests := []struct {
		name  string
		store func(m *memStore) Store
		setup func(m *memStore)
	}{
		{"batch store, lost ack then refusal", func(m *memStore) Store { return m },
			// call 1 ([1]) commits, ack lost; call 2 ([1..3]) is a conflict,
			// reconciled for 1; call 3 ([2 3]) is refused.
			func(m *memStore) {
				m.plan = []batchStep{{commit: true, err: errAckLost}, {commit: true}, {err: errDiskGone}}
			}},
		{"one-by-one store", func(m *memStore) Store { return oneByOneStore{m} },
			// The batch [2 3]: 2 is stored, 3 refused once.
			func(m *memStore) { m.failSeq = 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &memStore{}
			tt.setup(m)
			sink := &recordingSink{}
			b := mustOpenJournalBroker(t, tt.store(m), testJournal(filepath.Join(t.TempDir(), "audit.journal")), sink)
			m.hold()
			mustRecord(t, b, 1)
			<-m.entered // the ingester holds a batch of entry 1 alone
			mustRecord(t, b, 2)
			mustRecord(t, b, 3)
			m.release()
			for range 3 {
				if b.Flush(t.Context()) == nil {
					break
				}
			}
			mustFlush(t, b)
			checkTrail(t, m.stored(), 3)
			if err := b.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := sink.seqs(); !slices.Equal(got, seqsFrom(1, 3)) {
				t.Errorf("got sink seqs %v; want 1..3 once each", got)
			}
			if st := b.Stats(); st.Recorded != 3 {
				t.Errorf("got recorded %d; want 3", st.Recorded)
			}
		})
	}
}

// TestJournalRecovery: what a crashed run left in the journal is stored at
// Open, from where the store ends, and reaches the sinks.
func TestJournalRecovery(t *testing.T) {
	es := mustChain(t, 7, 0)
	last := frameBytes(es[6])
	tests := []struct {
		name       string
		stored     int // the store holds es[:stored]
		journal    []byte
		wantStored int
	}{
		{"empty store", 0, journalBytes(es[:6]...), 6},
		{"store holds a prefix", 3, journalBytes(es[:6]...), 6},
		{"store holds all", 6, journalBytes(es[:6]...), 6},
		{"journal holds the tail only", 3, journalBytes(es[3:6]...), 6},
		{"store ahead of an emptied journal", 6, journalBytes(es[:2]...), 6},
		{"torn tail", 2, slices.Concat(journalBytes(es[:6]...), last[:len(last)/2]), 6},
		{"torn final header", 2, slices.Concat(journalBytes(es[:6]...), last[:5]), 6},
		{"torn magic", 2, []byte(journalMagic[:7]), 2},
		{"no journal yet", 4, nil, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.journal")
			if tt.journal != nil {
				mustWriteFile(t, path, tt.journal)
			}
			store := &memStore{}
			store.preload(es[:tt.stored]...)
			sink := &recordingSink{}
			b := mustOpenJournalBroker(t, store, testJournal(path), sink)
			checkTrail(t, store.stored(), tt.wantStored)
			for i, e := range store.stored() {
				if e.Hash != es[i].Hash {
					t.Fatalf("got entry %d hash %s; want the journal's %s", e.Seq, e.Hash, es[i].Hash)
				}
			}
			if data := mustReadFile(t, path); string(data) != journalMagic {
				t.Errorf("got a journal of %d bytes after recovery; want only the magic", len(data))
			}
			e := mustRecord(t, b, 99)
			if e.Seq != int64(tt.wantStored+1) || e.PrevHash != es[tt.wantStored-1].Hash {
				t.Errorf("got seq %d prev %s; want %d after the recovered tail", e.Seq, e.PrevHash, tt.wantStored+1)
			}
			mustFlush(t, b)
			checkTrail(t, store.stored(), tt.wantStored+1)
			if err := b.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, want := sink.seqs(), seqsFrom(int64(tt.stored+1), int64(tt.wantStored+1)); !slices.Equal(got, want) {
				t.Errorf("got sink seqs %v; want the replayed and the new entries %v", got, want)
			}
		})
	}
}

// TestJournalRecoverOnly: a server without the journal replays what it
// holds, then commits every entry before Record returns.
func TestJournalRecoverOnly(t *testing.T) {
	es := mustChain(t, 5, 0)
	path := filepath.Join(t.TempDir(), "audit.journal")
	mustWriteFile(t, path, journalBytes(es...))
	store := &memStore{}
	store.preload(es[:2]...)
	sink := &recordingSink{}
	j := testJournal(path)
	j.RecoverOnly = true
	b := mustOpenJournalBroker(t, store, j, sink)
	checkTrail(t, store.stored(), 5)
	if data := mustReadFile(t, path); string(data) != journalMagic {
		t.Errorf("got a journal of %d bytes after recovery; want only the magic", len(data))
	}
	// The lock is released: servers without a journal may share the store.
	f, _, _, err := openJournalFile(path)
	if err != nil {
		t.Fatalf("got %v; want the journal free after a RecoverOnly Open", err)
	}
	f.close()

	e := mustRecord(t, b, 6)
	if got := store.stored(); len(got) != 6 || got[5].Hash != e.Hash {
		t.Fatalf("got %d stored entries when Record returned; want 6, the last one the new entry", len(got))
	}
	store.setFail(errDiskGone)
	if err := b.Record(t.Context(), newEntry(7)); !errors.Is(err, errDiskGone) {
		t.Errorf("got %v; want the store's error from Record", err)
	}
	store.setFail(nil)
	if err := b.Flush(t.Context()); err != nil {
		t.Errorf("got %v from Flush; want nil", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if data := mustReadFile(t, path); string(data) != journalMagic {
		t.Errorf("got a journal of %d bytes; want nothing appended in RecoverOnly mode", len(data))
	}
	if got := sink.seqs(); !slices.Equal(got, seqsFrom(3, 6)) {
		t.Errorf("got sink seqs %v; want 3..6", got)
	}
}

// TestJournalReplayRefused: a journal that does not continue the store is
// not glued on; Open names the journal, and neither it nor the store change.
func TestJournalReplayRefused(t *testing.T) {
	a, other := mustChain(t, 6, 0), mustChain(t, 6, 100)
	corrupt := journalBytes(a[:5]...)
	corrupt[len(journalMagic)+frameHeaderSize+10] ^= 1
	tests := []struct {
		name     string
		stored   []*tokenward.AuditEntry
		journal  []byte
		wantCode string
	}{
		{"differs at the overlap", a[:3], journalBytes(other[:5]...), tokenward.ECONFLICT},
		{"gap after the store", a[:3], journalBytes(a[4:6]...), tokenward.ECONFLICT},
		{"gap on an empty store", nil, journalBytes(a[1:4]...), tokenward.ECONFLICT},
		{"another trail's next seqs", a[:3], journalBytes(other[3:5]...), tokenward.ECONFLICT},
		{"corrupt", a[:1], corrupt, tokenward.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.journal")
			mustWriteFile(t, path, tt.journal)
			store := &memStore{}
			store.preload(tt.stored...)
			sink := &recordingSink{}
			b := newJournalBroker(t, store, testJournal(path), nil, sink)
			err := b.Open(t.Context())
			if err == nil {
				t.Fatal("got nil; want Open refused")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("got %q; want the journal's path in it", err)
			}
			if code := tokenward.ErrorCode(err); code != tt.wantCode {
				t.Errorf("got code %q; want %q", code, tt.wantCode)
			}
			got := store.stored()
			if len(got) != len(tt.stored) {
				t.Fatalf("got %d stored entries; want the store unchanged, %d", len(got), len(tt.stored))
			}
			for i := range got {
				if got[i].Hash != tt.stored[i].Hash {
					t.Errorf("got entry %d changed; want the store unchanged", got[i].Seq)
				}
			}
			if data := mustReadFile(t, path); !bytes.Equal(data, tt.journal) {
				t.Error("got the journal changed; want it kept")
			}
			if err := b.Record(t.Context(), newEntry(1)); !errors.Is(err, ErrClosed) {
				t.Errorf("got %v from Record after a failed Open; want ErrClosed", err)
			}
			// The refused journal is not left locked.
			f, _, _, err := openJournalFile(path)
			if errors.Is(err, ErrJournalInUse) {
				t.Error("got the journal still locked after a failed Open")
			}
			if f != nil {
				f.close()
			}
		})
	}
}

// TestJournalClose: Close stores what is left and empties the journal; if
// the store refuses, the entries stay in the journal for the next Open.
func TestJournalClose(t *testing.T) {
	t.Run("stores and empties", func(t *testing.T) {
		store := &memStore{}
		path := filepath.Join(t.TempDir(), "audit.journal")
		j := testJournal(path)
		j.IngestDelay = time.Hour // only Close stores them
		b := mustOpenJournalBroker(t, store, j)
		for i := 1; i <= 4; i++ {
			mustRecord(t, b, i)
		}
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkTrail(t, store.stored(), 4)
		if data := mustReadFile(t, path); string(data) != journalMagic {
			t.Errorf("got a journal of %d bytes after Close; want only the magic", len(data))
		}
	})
	t.Run("store failing", func(t *testing.T) {
		store := &memStore{}
		path := filepath.Join(t.TempDir(), "audit.journal")
		b := mustOpenJournalBroker(t, store, testJournal(path))
		var recorded []*tokenward.AuditEntry
		for i := 1; i <= 2; i++ {
			recorded = append(recorded, mustRecord(t, b, i))
		}
		mustFlush(t, b)
		store.setFail(errDiskGone)
		store.hold()
		for i := 3; i <= 4; i++ {
			recorded = append(recorded, mustRecord(t, b, i))
		}
		store.release()
		if err := b.Close(t.Context()); err != nil {
			t.Logf("close: %v", err)
		}
		checkTrail(t, store.stored(), 2)
		left, _, err := parseJournal(mustReadFile(t, path))
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 || left[len(left)-1].Hash != recorded[3].Hash || left[0].Seq > 3 {
			t.Fatalf("got journal seqs %v; want it to hold 3 and 4", entrySeqs(left))
		}

		store.setFail(nil)
		sink := &recordingSink{}
		b2 := mustOpenJournalBroker(t, store, testJournal(path), sink)
		checkTrail(t, store.stored(), 4)
		for i, e := range store.stored() {
			if e.Hash != recorded[i].Hash {
				t.Errorf("got entry %d hash %s; want the recorded %s", e.Seq, e.Hash, recorded[i].Hash)
			}
		}
		if e := mustRecord(t, b2, 5); e.Seq != 5 {
			t.Errorf("got seq %d after the replay; want 5", e.Seq)
		}
		if err := b2.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := sink.seqs(); !slices.Equal(got, seqsFrom(3, 5)) {
			t.Errorf("got sink seqs %v; want 3..5", got)
		}
	})
}

// TestJournalCheckpointStoredOnly: a checkpoint vouches only for entries
// the store holds, not for those still in the journal.
func TestJournalCheckpointStoredOnly(t *testing.T) {
	store := &memStore{}
	signer := mustSigner(t, 1)
	b := newJournalBroker(t, store, testJournal(filepath.Join(t.TempDir(), "audit.journal")), signer)
	if err := b.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	var es []*tokenward.AuditEntry
	for i := 1; i <= 3; i++ {
		es = append(es, mustRecord(t, b, i))
	}
	mustFlush(t, b)
	store.setFail(errDiskGone)
	store.hold()
	for i := 4; i <= 5; i++ {
		es = append(es, mustRecord(t, b, i))
	}
	store.release()
	if err := b.Flush(t.Context()); err == nil {
		t.Fatal("got nil from Flush; want the store's error")
	}
	cp, err := b.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cp == nil || cp.Seq != 3 || cp.Hash != es[2].Hash {
		t.Fatalf("got checkpoint %+v; want seq 3, the last stored entry", cp)
	}
	if !VerifyCheckpoint(cp, signer.PublicKey()) {
		t.Error("got a checkpoint that does not verify")
	}
	if seq, _ := b.chain.Last(); seq != 5 {
		t.Errorf("got chain at %d; want 5", seq)
	}
	store.setFail(nil)
	mustFlush(t, b)
	if cp, err = b.Checkpoint(t.Context()); err != nil || cp == nil || cp.Seq != 5 {
		t.Fatalf("got checkpoint %+v, %v; want seq 5 once stored", cp, err)
	}
	r, err := Verify(sliceSeq(store.stored()), store.cps, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.LastSeq != 5 || r.LastCheckpointSeq != 5 {
		t.Errorf("got report %+v; want a clean chain to 5, checkpointed at 5", r)
	}
}

// TestJournalBackpressure: with MaxPending entries not stored, Record
// waits, and gives up when its context ends.
func TestJournalBackpressure(t *testing.T) {
	store := &memStore{}
	j := testJournal(filepath.Join(t.TempDir(), "audit.journal"))
	j.MaxPending = 2
	b := mustOpenJournalBroker(t, store, j)
	store.hold()
	defer store.release()
	mustRecord(t, b, 1)
	mustRecord(t, b, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := b.Record(ctx, newEntry(3))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v; want Record to give up when its context ends", err)
	}
	if seq, _ := b.chain.Last(); seq != 2 {
		t.Errorf("got chain at %d; want 2", seq)
	}
	if st := b.Stats(); st.JournalPending != 2 || st.PrimaryFailures != 1 {
		t.Errorf("got pending %d, primary failures %d; want 2, 1", st.JournalPending, st.PrimaryFailures)
	}
	// Once the store catches up, a waiting Record goes through.
	done := make(chan error, 1)
	go func() { done <- b.Record(context.Background(), newEntry(3)) }()
	store.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustFlush(t, b)
	checkTrail(t, store.stored(), 3)
}

// TestJournalHoldsCanonicalEntries: the journal file is the magic and one
// frame of each entry's canonical encoding, after redaction: the hashed
// bytes, nothing more.
func TestJournalHoldsCanonicalEntries(t *testing.T) {
	const (
		hmac     = "hmac-sha256:3b1f0c9e7d"
		token    = "twj_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
		neverSet = "sk_live_never_passed_in"
	)
	store := &memStore{}
	path := filepath.Join(t.TempDir(), "audit.journal")
	j := testJournal(path)
	j.TruncateAt = 1 << 30
	b := mustOpenJournalBroker(t, store, j)
	var es []*tokenward.AuditEntry
	for i := 1; i <= 3; i++ {
		e := newEntry(i)
		e.Resource = "payments/prod/KEY_" + string(rune('A'+i-1))
		e.Meta = map[string]string{"value_hmac": hmac, "pasted": token}
		if err := b.Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	mustFlush(t, b)
	data := mustReadFile(t, path)
	if want := journalBytes(es...); !bytes.Equal(data, want) {
		t.Fatalf("got journal %x; want the magic and the entries' canonical frames %x", data, want)
	}
	for _, e := range es {
		if !bytes.Contains(data, []byte(e.Resource)) {
			t.Errorf("got a journal without %q; want each entry's resource", e.Resource)
		}
	}
	if !bytes.Contains(data, []byte(hmac)) {
		t.Error("got a journal without the Meta HMAC; want the entry as hashed")
	}
	for name, s := range map[string]string{"the pasted token": token, "a value never recorded": neverSet} {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("got a journal holding %s; want it absent", name)
		}
	}
}

// TestJournalTruncates: past TruncateAt, the journal is emptied once its
// entries are stored and the store synced.
func TestJournalTruncates(t *testing.T) {
	store := &memStore{}
	path := filepath.Join(t.TempDir(), "audit.journal")
	j := testJournal(path)
	j.TruncateAt = 1
	b := mustOpenJournalBroker(t, store, j)
	for i := 1; i <= 5; i++ {
		mustRecord(t, b, i)
	}
	mustFlush(t, b)
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() == int64(len(journalMagic)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got a journal of %d bytes; want it emptied past TruncateAt", fi.Size())
		}
		time.Sleep(time.Millisecond)
	}
	if store.syncs() == 0 {
		t.Error("got the journal emptied without SyncAudit; want the store synced first")
	}
	mustRecord(t, b, 6)
	mustFlush(t, b)
	checkTrail(t, store.stored(), 6)
}

// TestJournalReplaysAnyRecordedStatus: whatever Record accepts into the
// journal, the next Open must read back; a status the journal could not
// read back is refused up front.
func TestJournalReplaysAnyRecordedStatus(t *testing.T) {
	store := &memStore{}
	path := filepath.Join(t.TempDir(), "audit.journal")
	b := mustOpenJournalBroker(t, store, testJournal(path))
	for _, status := range []int{-1, 1000} {
		e := newEntry(1)
		e.Status = status
		if err := b.Record(t.Context(), e); tokenward.ErrorCode(err) != tokenward.EINVALID {
			t.Errorf("Record with status %d: got %v; want EINVALID", status, err)
		}
	}
	store.setFail(errDiskGone)
	store.hold()
	e := newEntry(1)
	e.Status = 999
	if err := b.Record(t.Context(), e); err != nil {
		t.Fatalf("Record with status 999: got %v; want it recorded", err)
	}
	if e.Seq != 1 {
		t.Fatalf("got seq %d; want 1 (refused entries take no seq)", e.Seq)
	}
	store.release()
	b.Close(t.Context())
	store.setFail(nil)
	mustOpenJournalBroker(t, store, testJournal(path))
	if got := store.stored(); len(got) != 1 || got[0].Hash != e.Hash {
		t.Fatalf("got %d stored entries; want the journaled entry", len(got))
	}
}

// TestJournalWriteFailureRefusesTheGroup: when the journal cannot be
// written, every request of the group that shared the write is refused,
// the chain does not advance, and (the partial write not being undoable)
// later requests are refused too: nothing is answered unrecorded.
func TestJournalWriteFailureRefusesTheGroup(t *testing.T) {
	store := &memStore{}
	b := mustOpenJournalBroker(t, store, testJournal(filepath.Join(t.TempDir(), "audit.journal")))
	for i := 1; i <= 3; i++ {
		mustRecord(t, b, i)
	}
	b.Journal.appendMu.Lock()
	b.Journal.file.f.Close() // every write and its undo now fail
	b.Journal.appendMu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = b.Record(t.Context(), newEntry(10+i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("record %d: got nil; want the write's failure", i)
		}
	}
	if seq, _ := b.chain.Last(); seq != 3 {
		t.Errorf("got the chain at %d; want 3", seq)
	}
	if err := b.Record(t.Context(), newEntry(30)); err == nil {
		t.Error("record after a failed undo: got nil; want refused")
	}
}

// TestJournalRefusedRecordWakesIngester: once the store fails, Records are
// refused until the ingester stores the pending entries again. A refused
// Record asks for that retry at once instead of leaving the server to
// refuse traffic until the ingester's backoff (up to 5 s) runs out. The
// backoff here is an hour, so every retry the test sees was asked for.
func TestJournalRefusedRecordWakesIngester(t *testing.T) {
	store := &memStore{}
	j := testJournal(filepath.Join(t.TempDir(), "audit.journal"))
	j.retryBase, j.retryMax, j.retryGap = time.Hour, time.Hour, 0
	b := mustOpenJournalBroker(t, store, j)
	t.Cleanup(store.release) // before Close, should the test fail at the gate
	mustRecord(t, b, 1)
	mustFlush(t, b)

	store.setFail(errDiskGone)
	mustRecord(t, b, 2) // answered before its batch fails
	if err := b.Flush(t.Context()); !errors.Is(err, errDiskGone) {
		t.Fatalf("got %v from Flush; want the store's error", err)
	}
	// The store fails three more attempts, then comes back: each attempt
	// is the one a refused Record asked for.
	const down = 3
	for i := 0; i <= down; i++ {
		if i == down {
			store.setFail(nil)
		}
		store.hold()
		j.mu.Lock()
		progress := j.progress
		j.mu.Unlock()
		if err := b.Record(t.Context(), newEntry(3)); !errors.Is(err, errDiskGone) {
			t.Fatalf("attempt %d: got %v; want Record refused with the store's error", i, err)
		}
		select {
		case <-store.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("attempt %d: the refused Record did not wake the ingester; it waits for its backoff", i)
		}
		store.release()
		<-progress
	}
	if err := b.Record(t.Context(), newEntry(3)); err != nil {
		t.Fatalf("got %v; want Record taken once the store is back", err)
	}
	mustFlush(t, b)
	checkTrail(t, store.stored(), 3)
}

// TestJournalRetryGap: wake-ups do not make the ingester retry a failing
// store more often than retryGap, and Close does not wait the gap out.
func TestJournalRetryGap(t *testing.T) {
	store := &memStore{}
	j := testJournal(filepath.Join(t.TempDir(), "audit.journal"))
	j.retryBase, j.retryMax, j.retryGap = time.Hour, time.Hour, time.Hour
	b := mustOpenJournalBroker(t, store, j)
	store.setFail(errDiskGone)
	j.mu.Lock()
	progress := j.progress
	j.mu.Unlock()
	mustRecord(t, b, 1)
	<-progress // its batch failed
	for range 3 {
		if err := b.Record(t.Context(), newEntry(2)); err == nil {
			t.Fatal("got Record taken while the store fails; want it refused")
		}
	}
	store.mu.Lock()
	before := store.batchCalls
	store.mu.Unlock()
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := store.batchCalls; got != before+1 {
		t.Errorf("got %d store attempts after the refused Records and Close; want 1 (Close's own)", got-before)
	}
}

// TestJournalGathersWhatArrivesDuringACommit: entries recorded while a
// batch commits wait for the next gathering (IngestDelay) and go in one
// batch, rather than being stored at once in batches of the few that
// arrived meanwhile, back to back.
func TestJournalGathersWhatArrivesDuringACommit(t *testing.T) {
	store := &memStore{}
	j := testJournal(filepath.Join(t.TempDir(), "audit.journal"))
	j.IngestDelay = time.Hour // only a Flush cuts the gathering short
	b := mustOpenJournalBroker(t, store, j)
	store.hold()
	mustRecord(t, b, 1)
	flushed := make(chan error, 1)
	go func() { flushed <- b.Flush(t.Context()) }()
	<-store.entered // the batch of entry 1 commits
	for i := 2; i <= 6; i++ {
		mustRecord(t, b, i)
	}
	store.release()
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // room for a wrong store of 2..6
	store.mu.Lock()
	calls := store.batchCalls
	store.mu.Unlock()
	if got := entrySeqs(store.stored()); calls != 1 || !slices.Equal(got, []int64{1}) {
		t.Fatalf("got %d commits storing %v before the next gathering ended; want 1 storing [1]", calls, got)
	}
	mustFlush(t, b)
	checkTrail(t, store.stored(), 6)
	store.mu.Lock()
	calls = store.batchCalls
	store.mu.Unlock()
	if calls != 2 {
		t.Errorf("got %d commits; want 2 (entries 2..6 in one)", calls)
	}
}
