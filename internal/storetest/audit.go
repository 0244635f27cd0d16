package storetest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
)

// AuditStore is what a backend provides for the audit trail.
type AuditStore interface {
	audit.Store
	audit.Source
	audit.Searcher
	audit.CheckpointTail
	Close() error
}

// RunAudit runs the audit trail's conformance tests; newStore returns a
// fresh, empty, open store (closed by the suite's cleanup).
func RunAudit(t *testing.T, newStore func(t *testing.T) AuditStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, AuditStore)
	}{
		{"AppendAndLast", testAuditAppend},
		{"ChainThroughBroker", testAuditBroker},
		{"Search", testAuditSearch},
		{"SearchPagesBack", testAuditPageBack},
		{"ConcurrentRecords", testAuditConcurrent},
		{"RecordsNULBytes", testAuditNULBytes},
		{"Prune", func(t *testing.T, s AuditStore) { testAuditPrune(t, s, nil) }},
		{"PruneThroughJournal", func(t *testing.T, s AuditStore) {
			testAuditPrune(t, s, &audit.Journal{Path: t.TempDir() + "/audit.journal", IngestDelay: time.Hour})
		}},
	}
	for _, tc := range tests {
		t.Run("Audit"+tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var auditT0 = time.Date(2026, 11, 22, 12, 0, 0, 123456000, time.UTC)

func testAuditAppend(t *testing.T, s AuditStore) {
	ctx := context.Background()
	if last, err := s.LastAudit(ctx); err != nil || last != nil {
		t.Fatalf("empty store: got %v, %v; want nil, nil", last, err)
	}
	c, err := audit.NewChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []*tokenward.AuditEntry{
		{Time: auditT0, RequestID: "r1", TokenID: "tok_1", TokenName: "ci", Action: "secret.read", Resource: "payments/prod/KEY",
			Outcome: tokenward.OutcomeAllowed, Status: 200, SourceIP: "10.0.0.1", UserAgent: "curl/8",
			CI: map[string]string{"repository": "acme/api", "run_id": "42"}, Meta: map[string]string{"version": "3"}},
		{Time: auditT0.Add(time.Second), Action: "token.create", Outcome: tokenward.OutcomeDenied, Reason: "not granted", Status: 403},
	}
	for _, e := range want {
		if err := c.Append(e, func(e *tokenward.AuditEntry) error { return s.AppendAudit(ctx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	dup := *want[1]
	if err := s.AppendAudit(ctx, &dup); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Fatalf("append taken seq: got %v; want ECONFLICT", err)
	}
	last, err := s.LastAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(last, want[1]) {
		t.Fatalf("last: got %+v; want %+v", last, want[1])
	}
	var got []*tokenward.AuditEntry
	for e, err := range s.AuditEntries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries: got %+v; want %+v", got, want)
	}
	if got[0].Time != auditT0 || audit.HashEntry(got[0]) != got[0].Hash {
		t.Fatalf("entry 1 read back: time %v, hash ok %v; want %v, true", got[0].Time, audit.HashEntry(got[0]) == got[0].Hash, auditT0)
	}
}

func testAuditBroker(t *testing.T, s AuditStore) {
	ctx := context.Background()
	key, err := audit.LoadOrCreateKey(t.TempDir() + "/audit.key")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := audit.NewSigner(key)
	if cp, err := s.LastAuditCheckpoint(ctx); err != nil || cp != nil {
		t.Fatalf("LastAuditCheckpoint of an empty store: got %+v, %v; want nil, nil", cp, err)
	}
	open := func() *audit.Broker {
		b := audit.NewBroker(s, signer)
		b.CheckpointEvery = 3
		if err := b.Open(ctx); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open()
	for i := range 5 {
		if err := b.Record(ctx, &tokenward.AuditEntry{Time: auditT0.Add(time.Duration(i) * time.Second), Action: "secret.read", Outcome: tokenward.OutcomeAllowed}); err != nil {
			t.Fatal(err)
		}
	}
	b.Close(ctx)
	// A restarted broker continues the chain from the store.
	b = open()
	if err := b.Record(ctx, &tokenward.AuditEntry{Time: auditT0.Add(time.Minute), Action: "secret.write", Outcome: tokenward.OutcomeAllowed}); err != nil {
		t.Fatal(err)
	}
	b.Close(ctx)
	cps, err := s.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 4 { // seq 3, close at 5, seq 6, close at 6
		t.Fatalf("got %d checkpoints; want 4", len(cps))
	}
	if last, err := s.LastAuditCheckpoint(ctx); err != nil || !reflect.DeepEqual(last, cps[len(cps)-1]) {
		t.Fatalf("LastAuditCheckpoint: got %+v, %v; want the last of %d: %+v", last, err, len(cps), cps[len(cps)-1])
	}
	r, err := audit.Verify(s.AuditEntries(ctx), cps, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.LastSeq != 6 || r.LastCheckpointSeq != 6 {
		t.Fatalf("verify: got ok=%v last=%d checkpoint=%d problems=%v; want ok, 6, 6", r.OK(), r.LastSeq, r.LastCheckpointSeq, r.Problems)
	}
}

func testAuditSearch(t *testing.T, s AuditStore) {
	ctx := context.Background()
	c, _ := audit.NewChain(nil)
	add := func(i int, tok, action, resource, outcome string) {
		e := &tokenward.AuditEntry{Time: auditT0.Add(time.Duration(i) * time.Minute), TokenID: tok, TokenName: "name-" + tok,
			Action: action, Resource: resource, Outcome: outcome}
		if err := c.Append(e, func(e *tokenward.AuditEntry) error { return s.AppendAudit(ctx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	add(0, "tok_a", "secret.read", "payments/prod/KEY", tokenward.OutcomeAllowed) // 1
	add(1, "tok_a", "secret.read", "payments/dev/KEY", tokenward.OutcomeAllowed)  // 2
	add(2, "tok_b", "secret.write", "payments/prod/KEY", tokenward.OutcomeDenied) // 3
	add(3, "tok_b", "token.create", "token:tok_c", tokenward.OutcomeAllowed)      // 4
	add(4, "", "secret.read", "", tokenward.OutcomeDenied)                        // 5
	add(5, "tok_a", "secret.read", "pay[ments]/prod/K?Y", tokenward.OutcomeError) // 6
	add(6, "tok_c", "secret.read_env", "payments/prod", tokenward.OutcomeAllowed) // 7
	tests := []struct {
		name string
		q    audit.Query
		want []int64
	}{
		{"all", audit.Query{}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"token id", audit.Query{Token: "tok_a"}, []int64{1, 2, 6}},
		{"token name", audit.Query{Token: "name-tok_b"}, []int64{3, 4}},
		{"resource glob", audit.Query{Resource: "payments/prod/*"}, []int64{1, 3}},
		{"resource literal", audit.Query{Resource: "payments/prod"}, []int64{7}},
		{"resource brackets are literal", audit.Query{Resource: "pay[ments]/prod/K?Y"}, []int64{6}},
		{"resource ? is literal", audit.Query{Resource: "payments/prod/K?Y"}, nil},
		{"action", audit.Query{Action: "secret.read"}, []int64{1, 2, 5, 6}},
		{"action prefix", audit.Query{Action: "secret.*"}, []int64{1, 2, 3, 5, 6, 7}},
		{"outcome", audit.Query{Outcome: tokenward.OutcomeDenied}, []int64{3, 5}},
		{"since", audit.Query{Since: auditT0.Add(5 * time.Minute)}, []int64{6, 7}},
		{"until", audit.Query{Until: auditT0.Add(2 * time.Minute)}, []int64{1, 2}},
		// Bounds beyond what Unix nanoseconds hold (1678 to 2262) are
		// still bounds (?since=2300-01-01T00:00:00Z), not wrapped around.
		{"since after 2262", audit.Query{Since: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"until after 2262", audit.Query{Since: auditT0.Add(5 * time.Minute), Until: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, []int64{6, 7}},
		{"since before 1678", audit.Query{Since: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), Limit: 2}, []int64{1, 2}},
		{"until before 1678", audit.Query{Until: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"after", audit.Query{After: 5}, []int64{6, 7}},
		{"before", audit.Query{Before: 3}, []int64{1, 2}},
		{"before 1 is empty", audit.Query{Before: 1}, nil},
		{"before newest", audit.Query{Before: 6, Newest: true, Limit: 2}, []int64{5, 4}},
		{"before and filter", audit.Query{Before: 6, Action: "secret.read", Newest: true}, []int64{5, 2, 1}},
		{"after and before", audit.Query{After: 2, Before: 6}, []int64{3, 4, 5}},
		{"after and before newest", audit.Query{After: 2, Before: 6, Newest: true, Limit: 2}, []int64{5, 4}},
		{"after and before empty window", audit.Query{After: 4, Before: 5}, nil},
		{"limit", audit.Query{Limit: 2}, []int64{1, 2}},
		{"newest", audit.Query{Newest: true, Limit: 2}, []int64{7, 6}},
		{"combined", audit.Query{Token: "tok_a", Action: "secret.read", Outcome: tokenward.OutcomeAllowed, Resource: "payments/*"}, []int64{1, 2}},
		// A client's filter text (?token=%00, ?resource=%FF*) that no stored
		// entry holds matches nothing, on every store (PostgreSQL's text
		// refuses NUL and invalid UTF-8 as a parameter too).
		{"token with NUL", audit.Query{Token: "tok_a\x00"}, nil},
		{"token not UTF-8", audit.Query{Token: "tok_\xff"}, nil},
		{"resource with NUL", audit.Query{Resource: "payments/\x00*"}, nil},
		{"resource not UTF-8", audit.Query{Resource: "pay\xffments/*"}, nil},
		{"action with NUL", audit.Query{Action: "secret.\x00*"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.SearchAudit(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
				if !tc.q.Match(e) {
					t.Errorf("entry %d returned but Query.Match says no", e.Seq)
				}
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
				t.Fatalf("got seqs %v; want %v", seqs, tc.want)
			}
		})
	}
	for _, q := range []audit.Query{{Outcome: "maybe"}, {After: -1}, {Before: -1}} {
		if _, err := s.SearchAudit(ctx, q); tokenward.ErrorCode(err) != tokenward.EINVALID {
			t.Fatalf("%+v: got %v; want EINVALID", q, err)
		}
	}
}

// testAuditPageBack pages newest first with Before set to the last seq
// of each page, through entries several of which share one time (as on a
// coarse clock): every match comes back once, in order —
// none skipped at a page boundary, as paging by Until would.
func testAuditPageBack(t *testing.T, s AuditStore) {
	ctx := context.Background()
	c, _ := audit.NewChain(nil)
	for seq := int64(1); seq <= 9; seq++ {
		at := auditT0 // seqs 2 to 8
		switch seq {
		case 1:
			at = auditT0.Add(-time.Minute)
		case 9:
			at = auditT0.Add(time.Minute)
		}
		action := "secret.read"
		if seq%2 == 0 {
			action = "secret.write"
		}
		e := &tokenward.AuditEntry{Time: at, Action: action, Outcome: tokenward.OutcomeAllowed}
		if err := c.Append(e, func(e *tokenward.AuditEntry) error { return s.AppendAudit(ctx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		q    audit.Query // Newest and Before are set by the paging
		want []int64
	}{
		{"one a page", audit.Query{Limit: 1}, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"two a page", audit.Query{Limit: 2}, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"four a page", audit.Query{Limit: 4}, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"one page", audit.Query{Limit: 9}, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"filtered", audit.Query{Action: "secret.read", Limit: 2}, []int64{9, 7, 5, 3, 1}},
		{"since", audit.Query{Since: auditT0, Limit: 3}, []int64{9, 8, 7, 6, 5, 4, 3, 2}},
		{"until", audit.Query{Until: auditT0.Add(time.Minute), Limit: 3}, []int64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"after", audit.Query{After: 3, Limit: 2}, []int64{9, 8, 7, 6, 5, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Newest = true
			var seqs []int64
			for range len(tc.want) + 2 { // bounded: a store that ignores Before would page forever
				page, err := s.SearchAudit(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page {
					seqs = append(seqs, e.Seq)
					if !q.Match(e) || (q.Before > 0 && e.Seq >= q.Before) || e.Seq <= q.After {
						t.Errorf("page before seq %d: got entry %d; want only matches below it", q.Before, e.Seq)
					}
				}
				if len(page) < q.Limit {
					break
				}
				q.Before = page[len(page)-1].Seq
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
				t.Fatalf("got seqs %v; want %v", seqs, tc.want)
			}
		})
	}
}

// testAuditConcurrent records from many goroutines at once (the broker
// group-commits when the store is an audit.BatchStore): every entry is
// stored once, the chain verifies, and checkpoints land on their seqs.
func testAuditConcurrent(t *testing.T, s AuditStore) {
	ctx := context.Background()
	signer := MustSigner(t)
	b := audit.NewBroker(s, signer)
	b.CheckpointEvery = 50
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 25
	var wg sync.WaitGroup
	seqs := make(chan int64, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := &tokenward.AuditEntry{Time: auditT0, Action: "secret.read", Outcome: tokenward.OutcomeAllowed, RequestID: fmt.Sprint(w, "-", i)}
				if err := b.Record(ctx, e); err != nil {
					t.Error(err)
					return
				}
				seqs <- e.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Fatalf("seq %d handed out twice", q)
		}
		seen[q] = true
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := verifyStored(t, s, signer.PublicKey())
	if !r.OK() || r.Entries != workers*each || r.LastCheckpointSeq != workers*each {
		t.Fatalf("got ok=%v entries=%d last checkpoint=%d problems=%v; want ok, %d, %d", r.OK(), r.Entries, r.LastCheckpointSeq, r.Problems, workers*each, workers*each)
	}
	if cps, err := s.AuditCheckpoints(ctx); err != nil || len(cps) != workers*each/50+1 {
		t.Fatalf("got %d checkpoints, %v; want %d", len(cps), err, workers*each/50+1)
	}
}

// testAuditNULBytes records, through a broker, an entry whose text holds
// a NUL byte — a client's text such as a request path's
// GET /v1/tokens/%00 (resource "token:\x00"), which any caller, even one
// refused with 401, gets into the trail — beside a clean entry: both are
// stored, and the chain verifies. PostgreSQL's text refuses NUL, so such an
// entry must not fail its group (and so every request in it).
func testAuditNULBytes(t *testing.T, s AuditStore) {
	ctx := context.Background()
	signer := MustSigner(t)
	b := audit.NewBroker(s, signer)
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*tokenward.AuditEntry{
		{Time: auditT0, Action: "token.read", Resource: "token:a\x00b", RequestID: "r\x00", Reason: "not\x00found",
			Outcome: tokenward.OutcomeDenied, Status: 401, Meta: map[string]string{"k\x00": "v\x00"}},
		{Time: auditT0, Action: "secret.read", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed},
	} {
		if err := b.Record(ctx, e); err != nil {
			t.Fatalf("record %q: got %v; want it stored", e.Resource, err)
		}
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.SearchAudit(ctx, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Action != "token.read" || got[1].Resource != "payments/prod/KEY" {
		t.Fatalf("got %d entries %+v; want the two recorded", len(got), got)
	}
	r := verifyStored(t, s, signer.PublicKey())
	if !r.OK() || r.Entries != 2 {
		t.Fatalf("verify: got ok=%v entries=%d problems=%v; want ok, 2", r.OK(), r.Entries, r.Problems)
	}
}

// testAuditPrune: retention deletes the oldest entries up to a signed
// checkpoint, after recording the deletion under a checkpoint of its own;
// the trail left verifies, and a second prune with the same bound deletes
// nothing. With j, entries reach the store through that journal (the
// SQLite server's default), which Prune flushes.
func testAuditPrune(t *testing.T, s AuditStore, j *audit.Journal) {
	ctx := context.Background()
	ps, ok := s.(audit.PruneStore)
	if !ok {
		t.Fatalf("%T does not implement audit.PruneStore", s)
	}
	signer := MustSigner(t)
	b := audit.NewBroker(s, signer)
	b.CheckpointEvery = 3
	b.Journal = j
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if anchor, cps, err := ps.AuditPruneAnchor(ctx, auditT0.Add(time.Hour)); err != nil || anchor != nil || cps != nil {
		t.Fatalf("anchor of an empty trail: got %+v, %v, %v; want nil, nil, nil", anchor, cps, err)
	}
	for i := range 10 { // seq i+1 at auditT0 + i minutes; checkpoints at 3, 6, 9
		if err := b.Record(ctx, &tokenward.AuditEntry{Time: auditT0.Add(time.Duration(i) * time.Minute), Action: "secret.read", Outcome: tokenward.OutcomeAllowed}); err != nil {
			t.Fatal(err)
		}
	}
	before := auditT0.Add(7 * time.Minute) // entries 1..7 are older; the newest checkpoint among them is 6
	res, err := b.Prune(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	if res.Through != 6 || res.Deleted != 6 {
		t.Fatalf("got %+v; want through 6, 6 deleted", res)
	}
	var seqs []int64
	var record *tokenward.AuditEntry
	for e, err := range s.AuditEntries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
		if e.Action == audit.PruneAction {
			record = e
		}
	}
	if !reflect.DeepEqual(seqs, []int64{7, 8, 9, 10, 11}) {
		t.Fatalf("got seqs %v after the prune; want 7..11", seqs)
	}
	if record == nil || record.Seq != 11 || record.Meta[audit.MetaPruneThrough] != "6" {
		t.Fatalf("got prune record %+v; want seq 11 naming through_seq 6", record)
	}
	cps, err := s.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cpSeqs []int64
	for _, cp := range cps {
		cpSeqs = append(cpSeqs, cp.Seq)
	}
	if !reflect.DeepEqual(cpSeqs, []int64{6, 9, 11}) {
		t.Fatalf("got checkpoints at %v; want the anchor 6, 9 and the prune's own 11", cpSeqs)
	}
	r, err := audit.Verify(s.AuditEntries(ctx), cps, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.PrunedThrough != 6 || r.PruneRecordSeq != 11 || r.LastSeq != 11 {
		t.Fatalf("verify after the prune: got %+v; want OK, pruned through 6 by entry 11", r)
	}
	// Nothing older is left: the same bound prunes nothing, records nothing.
	if res, err := b.Prune(ctx, before); err != nil || res != (audit.PruneResult{}) {
		t.Fatalf("second prune: got %+v, %v; want nothing done", res, err)
	}
	if last, err := s.LastAudit(ctx); err != nil || last.Seq != 11 {
		t.Fatalf("last entry after a prune with nothing to do: got %+v, %v; want seq 11", last, err)
	}
}

// verifyStored verifies s's trail as it is stored, against its stored
// checkpoints and pub.
func verifyStored(t *testing.T, s AuditStore, pub ed25519.PublicKey) *audit.Report {
	t.Helper()
	cps, err := s.AuditCheckpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r, err := audit.Verify(s.AuditEntries(t.Context()), cps, pub)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
