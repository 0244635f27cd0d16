package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// vector is the canonical-encoding test vector in testdata, which
// docs/audit.md points implementers of other verifiers to.
type vector struct {
	Entry     *tokenward.AuditEntry `json:"entry"`
	Canonical string                `json:"canonical_hex"`
	Hash      string                `json:"hash"`
}

func TestCanonicalVector(t *testing.T) {
	e := newEntry(3)
	e.Seq = 42
	e.Time = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	e.Meta = map[string]string{"value_hmac": "9f2c", "version": "3"}
	e.PrevHash = GenesisHash
	e.Hash = HashEntry(e)
	got := vector{Entry: e, Canonical: hex.EncodeToString(Canonical(e)), Hash: e.Hash}
	path := filepath.Join("testdata", "canonical_v1.json")
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want vector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if got.Canonical != want.Canonical || got.Hash != want.Hash {
		t.Errorf("got canonical %s hash %s; want %s hash %s", got.Canonical, got.Hash, want.Canonical, want.Hash)
	}
	// The vector's entry, read from JSON, must hash to the vector's hash.
	if h := HashEntry(want.Entry); h != want.Hash {
		t.Errorf("got hash %s of the vector's entry; want %s", h, want.Hash)
	}
}

func TestCanonicalDistinguishes(t *testing.T) {
	base := func() *tokenward.AuditEntry {
		e := newEntry(1)
		e.Seq, e.Time, e.PrevHash = 1, testEpoch, GenesisHash
		return e
	}
	tests := []struct {
		name  string
		a, b  func(e *tokenward.AuditEntry)
		equal bool
	}{
		{"field boundary shift", func(e *tokenward.AuditEntry) { e.TokenID, e.TokenName = "ab", "c" },
			func(e *tokenward.AuditEntry) { e.TokenID, e.TokenName = "a", "bc" }, false},
		{"map key/value boundary", func(e *tokenward.AuditEntry) { e.Meta = map[string]string{"ab": "c"} },
			func(e *tokenward.AuditEntry) { e.Meta = map[string]string{"a": "bc"} }, false},
		{"CI versus Meta", func(e *tokenward.AuditEntry) { e.CI, e.Meta = map[string]string{"k": "v"}, nil },
			func(e *tokenward.AuditEntry) { e.CI, e.Meta = nil, map[string]string{"k": "v"} }, false},
		{"nanoseconds count", func(e *tokenward.AuditEntry) {}, func(e *tokenward.AuditEntry) { e.Time = e.Time.Add(1) }, false},
		{"prev hash counts", func(e *tokenward.AuditEntry) {}, func(e *tokenward.AuditEntry) { e.PrevHash = "1" + GenesisHash[1:] }, false},
		{"status counts", func(e *tokenward.AuditEntry) {}, func(e *tokenward.AuditEntry) { e.Status = 500 }, false},
		{"same instant in another zone", func(e *tokenward.AuditEntry) {},
			func(e *tokenward.AuditEntry) { e.Time = e.Time.In(time.FixedZone("X", 3600)) }, true},
		{"nil and empty map", func(e *tokenward.AuditEntry) { e.Meta = nil },
			func(e *tokenward.AuditEntry) { e.Meta = map[string]string{} }, true},
		{"hash field excluded", func(e *tokenward.AuditEntry) {}, func(e *tokenward.AuditEntry) { e.Hash = "x" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.a(a)
			tt.b(b)
			if got := HashEntry(a) == HashEntry(b); got != tt.equal {
				t.Errorf("got equal hashes %v; want %v", got, tt.equal)
			}
		})
	}
}

func TestChainAppend(t *testing.T) {
	c, err := NewChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	e1 := newEntry(1)
	e1.Time = testEpoch.Add(1500 * time.Nanosecond) // below a microsecond is cut
	if err := c.Append(e1, func(*tokenward.AuditEntry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if e1.Seq != 1 || e1.PrevHash != GenesisHash || e1.Hash != HashEntry(e1) || !e1.Time.Equal(testEpoch.Add(time.Microsecond)) {
		t.Fatalf("got seq %d prev %s time %v; want seq 1 from genesis at %v", e1.Seq, e1.PrevHash, e1.Time, testEpoch.Add(time.Microsecond))
	}
	// A failed write must not advance the chain.
	e2 := newEntry(2)
	e2.Time = testEpoch
	if err := c.Append(e2, func(*tokenward.AuditEntry) error { return context.DeadlineExceeded }); err == nil {
		t.Fatal("got nil error from a failed write; want it returned")
	}
	if seq, hash := c.Last(); seq != 1 || hash != e1.Hash {
		t.Fatalf("got last %d %s after a failed write; want 1 %s", seq, hash, e1.Hash)
	}
	if err := c.Append(e2, func(*tokenward.AuditEntry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if e2.Seq != 2 || e2.PrevHash != e1.Hash {
		t.Errorf("got seq %d prev %s; want 2 %s", e2.Seq, e2.PrevHash, e1.Hash)
	}
	if err := c.Append(&tokenward.AuditEntry{Action: "x"}, func(*tokenward.AuditEntry) error { return nil }); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("got %v for an entry without time; want EINVALID", err)
	}
}

func TestNewChainRejectsCorruptLast(t *testing.T) {
	entries, _ := buildChain(t, 3, nil, 0)
	last := entries[2]
	last.Reason = "edited"
	if _, err := NewChain(last); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("got %v; want EINVALID for a last entry that does not match its hash", err)
	}
	if _, err := NewChain(&tokenward.AuditEntry{Seq: 0}); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("got %v; want EINVALID for seq 0", err)
	}
}

// TestChainResumesAcrossRestart records entries through a broker, closes
// everything, reopens the same files and records more: the whole chain must
// verify, with consecutive seqs and the checkpoints of both runs.
func TestChainResumesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	signer := mustSigner(t, 1)
	clock := newTestClock()
	run := func(from, to int) {
		store := mustFileStore(t, dir)
		b := NewBroker(store, signer)
		b.Now, b.CheckpointEvery = clock.Now, 4
		if err := b.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i := from; i <= to; i++ {
			e := newEntry(i)
			if err := b.Record(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != int64(i) {
				t.Fatalf("got seq %d; want %d", e.Seq, i)
			}
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run(1, 6)
	run(7, 13)
	store := mustFileStore(t, dir)
	cps, err := store.AuditCheckpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var cpSeqs []int64
	for _, cp := range cps {
		cpSeqs = append(cpSeqs, cp.Seq)
	}
	if want := []int64{4, 6, 8, 12, 13}; !equalInts(cpSeqs, want) {
		t.Errorf("got checkpoints at %v; want %v", cpSeqs, want)
	}
	r, err := Verify(store.AuditEntries(context.Background()), cps, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.LastSeq != 13 || r.LastCheckpointSeq != 13 {
		t.Errorf("got %+v; want a clean chain to seq 13, checkpointed at 13", r)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAppendFramedRemembersCI: entries sharing a CI map (a JIT token's),
// entries with maps of their own and entries without hash exactly as
// HashEntry says, before and after the memo of encodings starts over, and
// a remembered map's encoding is not used for another map.
func TestAppendFramedRemembersCI(t *testing.T) {
	c, err := NewChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	shared := map[string]string{"repository": "acme/api", "run_id": "1", "workflow": "deploy"}
	var es []*tokenward.AuditEntry
	start := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	for i := range 3*ciEncodingsMax + 30 { // past ciEncodingsMax maps of their own: it starts over
		e := newEntry(i)
		e.Time = start.Add(time.Duration(i) * time.Millisecond)
		switch i % 3 {
		case 0:
			e.CI = shared
		case 1:
			e.CI = map[string]string{"repository": "acme/api", "run_id": fmt.Sprint(i)}
		default:
			e.CI = nil
		}
		es = append(es, e)
	}
	for len(es) > 0 {
		n := min(len(es), 7)
		if err := c.appendFramed(es[:n], func([]byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
		for _, e := range es[:n] {
			if want := HashEntry(e); e.Hash != want {
				t.Fatalf("entry %d (ci %v): hash %s; want %s", e.Seq, e.CI, e.Hash, want)
			}
		}
		es = es[n:]
	}
	if n := len(c.ci.byMap); n == 0 || n > ciEncodingsMax {
		t.Errorf("remembered %d maps; want some, at most %d", n, ciEncodingsMax)
	}
}

// BenchmarkCanonicalJITEntry: encoding a JIT read's entry, whose CI map
// (the facts of a GitHub Actions token) every request of the token shares,
// with its encoding remembered and encoded each time.
func BenchmarkCanonicalJITEntry(b *testing.B) {
	e := newEntry(1)
	e.Time = time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	e.CI = map[string]string{
		"provider": "github", "repository": "acme/payments", "repository_owner": "acme", "ref": "refs/heads/main",
		"sha": "0123456789abcdef0123456789abcdef01234567", "workflow": "deploy", "workflow_ref": "acme/payments/.github/workflows/deploy.yml@refs/heads/main",
		"run_id": "9876543210", "run_attempt": "1", "actor": "octocat", "event_name": "push", "environment": "prod",
	}
	buf := make([]byte, 0, 2048)
	var ci ciEncodings
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			buf = appendCanonicalCI(buf[:0], e, &ci)
		}
	})
	b.Run("encoded", func(b *testing.B) {
		for b.Loop() {
			buf = appendCanonicalCI(buf[:0], e, nil)
		}
	})
}
