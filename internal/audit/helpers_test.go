package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

var testEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testClock is an injectable clock that moves one second per reading.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: testEpoch} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// mustKey returns a fixed Ed25519 key derived from seed, so golden files
// hold stable signatures.
func mustKey(tb testing.TB, seed byte) ed25519.PrivateKey {
	tb.Helper()
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

func mustSigner(tb testing.TB, seed byte) *Signer {
	tb.Helper()
	s, err := NewSigner(mustKey(tb, seed))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newEntry returns the i-th entry of a synthetic request stream.
func newEntry(i int) *tokenward.AuditEntry {
	e := &tokenward.AuditEntry{
		RequestID: fmt.Sprintf("req-%04d", i),
		TokenID:   "tok_01",
		TokenName: "ci-deploy",
		Action:    "secret.read",
		Resource:  "payments/prod/STRIPE_KEY",
		Outcome:   tokenward.OutcomeAllowed,
		Status:    200,
		SourceIP:  "203.0.113.7",
		UserAgent: "tokenward-cli/1.0",
		CI:        map[string]string{"repository": "acme/payments", "run_id": fmt.Sprint(1000 + i)},
	}
	if i%3 == 0 {
		e.Outcome, e.Status, e.Reason = tokenward.OutcomeDenied, 403, "no grant covers payments/prod"
	}
	return e
}

// buildChain chains n entries in memory with a checkpoint every cpEvery
// entries (0: none).
func buildChain(tb testing.TB, n int, signer *Signer, cpEvery int64) ([]*tokenward.AuditEntry, []*Checkpoint) {
	tb.Helper()
	clock := newTestClock()
	c, err := NewChain(nil)
	if err != nil {
		tb.Fatal(err)
	}
	var entries []*tokenward.AuditEntry
	var cps []*Checkpoint
	for i := 1; i <= n; i++ {
		e := newEntry(i)
		e.Time = clock.Now()
		if err := c.Append(e, func(*tokenward.AuditEntry) error { return nil }); err != nil {
			tb.Fatal(err)
		}
		entries = append(entries, e)
		if cpEvery > 0 && e.Seq%cpEvery == 0 {
			cps = append(cps, signer.Sign(e.Seq, e.Hash, clock.Now()))
		}
	}
	return entries, cps
}

func sliceSeq(entries []*tokenward.AuditEntry) func(func(*tokenward.AuditEntry, error) bool) {
	d := &ExportData{Entries: entries}
	return d.All()
}

// mustFileStore opens a FileStore in a fresh temporary directory.
func mustFileStore(tb testing.TB, dir string) *FileStore {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	s := NewFileStore(dir)
	s.Sync = false // tests need no durability against power loss
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// noSleep makes retries immediate.
func noSleep(ctx context.Context, d time.Duration) error { return ctx.Err() }
