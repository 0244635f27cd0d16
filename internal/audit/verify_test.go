package audit

import (
	"slices"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

func TestVerify(t *testing.T) {
	signer := mustSigner(t, 1)
	other := mustSigner(t, 99)
	type chain struct {
		entries []*tokenward.AuditEntry
		cps     []*Checkpoint
	}
	// at returns the stored entry with seq n.
	at := func(c *chain, n int64) *tokenward.AuditEntry {
		for _, e := range c.entries {
			if e.Seq == n {
				return e
			}
		}
		t.Fatalf("no entry %d", n)
		return nil
	}
	// rechain re-hashes and re-links every entry from index i on, as an
	// attacker without the signing key would.
	rechain := func(c *chain, i int) {
		for ; i < len(c.entries); i++ {
			if i > 0 {
				c.entries[i].PrevHash = c.entries[i-1].Hash
			}
			c.entries[i].Hash = HashEntry(c.entries[i])
		}
	}
	tests := []struct {
		name     string
		tamper   func(c *chain)
		wantKind Kind // "" for a clean chain
		wantSeq  int64
		// wantIndex, when not 0, is the input position (plus one) the
		// problem must name: which of two same-seq entries is the forgery.
		wantIndex int64
	}{
		{"intact", func(c *chain) {}, "", 0, 0},
		{"modified field", func(c *chain) { at(c, 7).Reason = "nothing to see" }, KindModified, 7, 0},
		{"modified CI map", func(c *chain) { at(c, 7).CI["repository"] = "evil/repo" }, KindModified, 7, 0},
		{"modified time", func(c *chain) { e := at(c, 12); e.Time = e.Time.Add(-time.Second) }, KindModified, 12, 0},
		{"modified and re-hashed", func(c *chain) {
			e := at(c, 7)
			e.Outcome = tokenward.OutcomeDenied
			e.Hash = HashEntry(e)
		}, KindModified, 7, 0},
		{"modified and whole tail re-chained", func(c *chain) {
			at(c, 7).Reason = "rewritten"
			rechain(c, 6)
		}, KindModified, 6, 0}, // checkpoint 10 catches it; 5 was good, so 6..10 is the range
		{"deleted", func(c *chain) { c.entries = slices.Delete(c.entries, 6, 7) }, KindDeleted, 7, 0},
		{"deleted several", func(c *chain) { c.entries = slices.Delete(c.entries, 6, 9) }, KindDeleted, 7, 0},
		{"deleted first", func(c *chain) { c.entries = c.entries[1:] }, KindDeleted, 1, 0},
		{"deleted and renumbered", func(c *chain) {
			c.entries = slices.Delete(c.entries, 6, 7)
			for _, e := range c.entries[6:] {
				e.Seq--
			}
			rechain(c, 6)
		}, KindModified, 6, 0},
		{"inserted duplicate", func(c *chain) {
			dup := *at(c, 7)
			c.entries = slices.Insert(c.entries, 7, &dup)
		}, KindInserted, 7, 0},
		{"inserted forgery before original", func(c *chain) {
			f := newEntry(500)
			f.Time, f.Seq, f.PrevHash = at(c, 7).Time, 7, at(c, 6).Hash
			f.Hash = HashEntry(f)
			c.entries = slices.Insert(c.entries, 6, f)
		}, KindInserted, 7, 6 + 1},
		{"inserted forgery after original", func(c *chain) {
			f := newEntry(500)
			f.Time, f.Seq, f.PrevHash = at(c, 7).Time, 7, at(c, 6).Hash
			f.Hash = HashEntry(f)
			c.entries = slices.Insert(c.entries, 7, f)
		}, KindInserted, 7, 7 + 1},
		{"inserted old entry later", func(c *chain) {
			dup := *at(c, 3)
			c.entries = slices.Insert(c.entries, 9, &dup)
		}, KindInserted, 3, 0},
		{"reordered adjacent", func(c *chain) { c.entries[6], c.entries[7] = c.entries[7], c.entries[6] }, KindReordered, 8, 0},
		{"reordered first two", func(c *chain) { c.entries[0], c.entries[1] = c.entries[1], c.entries[0] }, KindReordered, 2, 0},
		{"first entry stored later", func(c *chain) {
			e := c.entries[0]
			c.entries = slices.Insert(slices.Delete(c.entries, 0, 1), 8, e)
		}, KindReordered, 2, 0},
		{"reordered far", func(c *chain) {
			e := c.entries[4]
			c.entries = slices.Insert(slices.Delete(c.entries, 4, 5), 15, e)
		}, KindReordered, 6, 0},
		{"truncated tail", func(c *chain) { c.entries = c.entries[:17] }, KindTruncated, 18, 0},
		{"truncated to nothing", func(c *chain) { c.entries = nil }, KindTruncated, 1, 0},
		{"tail deleted after last checkpoint is not detectable", func(c *chain) {
			c.entries = c.entries[:20]
			c.cps = c.cps[:4]
		}, "", 0, 0},
		{"forged checkpoint", func(c *chain) {
			c.cps = append(c.cps, other.Sign(22, at(c, 22).Hash, testEpoch))
		}, KindCheckpoint, 22, 0},
		{"checkpoint hash altered", func(c *chain) { c.cps[1].Hash = at(c, 9).Hash }, KindCheckpoint, 10, 0},
		{"checkpoints of several servers in any order", func(c *chain) {
			// Servers sign when their batch crosses a multiple, and each at
			// its shutdown, at the head it knows: one seq may have several.
			slices.Reverse(c.cps)
			c.cps = append(c.cps, signer.Sign(7, at(c, 7).Hash, testEpoch), signer.Sign(7, at(c, 7).Hash, testEpoch.Add(time.Second)), signer.Sign(23, at(c, 23).Hash, testEpoch))
		}, "", 0, 0},
		{"one of two checkpoints at a seq names another hash", func(c *chain) {
			bad := signer.Sign(10, at(c, 9).Hash, testEpoch)
			c.cps = append([]*Checkpoint{bad}, c.cps...)
		}, KindModified, 6, 0},
		{"checkpoint signature cut", func(c *chain) { c.cps[0].Signature = c.cps[0].Signature[:10] }, KindCheckpoint, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, cps := buildChain(t, 23, signer, 5)
			c := &chain{entries, cps}
			tt.tamper(c)
			r, err := Verify(sliceSeq(c.entries), c.cps, signer.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantKind == "" {
				if !r.OK() {
					t.Fatalf("got problems %v; want none", r.Problems)
				}
				return
			}
			p := r.First()
			if p == nil {
				t.Fatalf("got no problem; want %s at seq %d", tt.wantKind, tt.wantSeq)
			}
			if p.Kind != tt.wantKind || p.Seq != tt.wantSeq {
				t.Errorf("got %s at seq %d (%s); want %s at seq %d", p.Kind, p.Seq, p.Detail, tt.wantKind, tt.wantSeq)
			}
			if tt.wantIndex != 0 && p.Index != tt.wantIndex-1 {
				t.Errorf("got index %d; want %d", p.Index, tt.wantIndex-1)
			}
		})
	}
}

func TestVerifyReportsCounts(t *testing.T) {
	signer := mustSigner(t, 1)
	entries, cps := buildChain(t, 12, signer, 5)
	r, err := Verify(sliceSeq(entries), cps, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if r.Entries != 12 || r.LastSeq != 12 || r.LastHash != entries[11].Hash || r.LastCheckpointSeq != 10 || r.Checkpoints != 2 {
		t.Errorf("got %+v; want 12 entries, last seq 12 with its hash, last checkpoint 10, 2 checkpoints", r)
	}
}

func TestVerifyNeedsKeyForCheckpoints(t *testing.T) {
	signer := mustSigner(t, 1)
	entries, cps := buildChain(t, 5, signer, 5)
	if _, err := Verify(sliceSeq(entries), cps, nil); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("got %v; want an EINVALID error", err)
	}
}

// BenchmarkVerify measures verification per entry (a chain of 10000 with a
// checkpoint every 1000).
func BenchmarkVerify(b *testing.B) {
	signer := mustSigner(b, 1)
	entries, cps := buildChain(b, 10000, signer, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := Verify(sliceSeq(entries), cps, signer.PublicKey())
		if err != nil || !r.OK() {
			b.Fatal(err, r.Problems)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/entry")
}
