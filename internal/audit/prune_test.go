package audit

import (
	"testing"

	"github.com/tokenward/tokenward"
)

// prunedChain chains 13 entries with a checkpoint every 3; entry 11
// records the prune of the entries through 6 (as Broker.Prune writes it),
// and entry 13 a forged one through 9, after the last checkpoint.
func prunedChain(t *testing.T, signer *Signer) ([]*tokenward.AuditEntry, map[int64]*Checkpoint) {
	t.Helper()
	clock := newTestClock()
	c, err := NewChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	var es []*tokenward.AuditEntry
	cps := map[int64]*Checkpoint{}
	for i := 1; i <= 13; i++ {
		e := newEntry(i)
		switch i {
		case 11:
			e = &tokenward.AuditEntry{Action: PruneAction, Outcome: tokenward.OutcomeAllowed, Meta: map[string]string{MetaPruneThrough: "6"}}
		case 13:
			e = &tokenward.AuditEntry{Action: PruneAction, Outcome: tokenward.OutcomeAllowed, Meta: map[string]string{MetaPruneThrough: "9"}}
		}
		e.Time = clock.Now()
		if err := c.Append(e, func(*tokenward.AuditEntry) error { return nil }); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
		if e.Seq%3 == 0 {
			cps[e.Seq] = signer.Sign(e.Seq, e.Hash, clock.Now())
		}
	}
	return es, cps
}

// TestVerifyPrunedTrail: a trail may start after seq 1 only at a valid
// checkpoint's entry (the anchor), and only when an entry under a later
// checkpoint records that prune; a head deleted any other way is reported.
func TestVerifyPrunedTrail(t *testing.T) {
	signer := mustSigner(t, 1)
	other := mustSigner(t, 2)
	es, cps := prunedChain(t, signer)
	from := func(seq int64) []*tokenward.AuditEntry { return es[seq-1:] }
	at := func(seqs ...int64) []*Checkpoint {
		var out []*Checkpoint
		for _, s := range seqs {
			out = append(out, cps[s])
		}
		return out
	}
	tests := []struct {
		name    string
		entries []*tokenward.AuditEntry
		cps     []*Checkpoint
		want    Kind // "" for OK
		through int64
	}{
		{"pruned through 6, recorded at 11 under checkpoint 12", from(7), at(6, 9, 12), "", 6},
		{"old checkpoints before the anchor are ignored", from(7), at(3, 6, 9, 12), "", 6},
		{"head deleted through checkpoint 3: no record names 3", from(4), at(3, 6, 9, 12), KindDeleted, 3},
		{"head deleted through checkpoint 9: the record naming 9 is after the last checkpoint", from(10), at(9, 12), KindDeleted, 9},
		{"the record is not under a checkpoint", from(7), at(6, 9), KindDeleted, 6},
		{"no checkpoint at the anchor", from(7), at(9, 12), KindDeleted, 0},
		{"the anchor signed by another key", from(7), []*Checkpoint{other.Sign(6, es[5].Hash, es[5].Time), cps[9], cps[12]}, KindDeleted, 0},
		{"the anchor names another hash", from(7), []*Checkpoint{signer.Sign(6, es[4].Hash, es[5].Time), cps[9], cps[12]}, KindDeleted, 0},
		{"the first entry removed as well", from(8), at(6, 9, 12), KindDeleted, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Verify(sliceSeq(tc.entries), tc.cps, signer.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if !r.OK() || r.PrunedThrough != tc.through || r.PruneRecordSeq != 11 || r.LastSeq != 13 {
					t.Fatalf("got %+v; want OK, pruned through %d by entry 11", r, tc.through)
				}
				return
			}
			if r.OK() || r.First().Kind != tc.want {
				t.Fatalf("got %+v; want %s first", r.Problems, tc.want)
			}
			if tc.want == KindDeleted && r.First().Seq != 1 {
				t.Errorf("got the deletion at seq %d; want 1", r.First().Seq)
			}
		})
	}
}

// TestVerifyUnprunedHeadStillRequiresGenesis: a trail from seq 1 is
// checked as before, prune records or not.
func TestVerifyUnprunedHeadStillRequiresGenesis(t *testing.T) {
	signer := mustSigner(t, 1)
	es, cps := prunedChain(t, signer)
	r, err := Verify(sliceSeq(es), []*Checkpoint{cps[3], cps[6], cps[9], cps[12]}, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.PrunedThrough != 0 || r.LastSeq != 13 {
		t.Fatalf("got %+v; want OK from seq 1", r)
	}
	if r.LastCheckpointSeq != 12 {
		t.Errorf("got last checkpoint %d; want 12", r.LastCheckpointSeq)
	}
}

// TestVerifyPrunedTrailNamesTheRewrittenRange: on a trail that starts
// after a prune, a rewrite caught by a checkpoint is named from the entry
// after the anchor (whose checkpoint held), not from seq 1, which the
// trail no longer has.
func TestVerifyPrunedTrailNamesTheRewrittenRange(t *testing.T) {
	signer := mustSigner(t, 1)
	es, cps := prunedChain(t, signer)
	trail := make([]*tokenward.AuditEntry, 0, 7)
	for _, e := range es[6:] { // seq 7..13, pruned through 6
		c := *e
		trail = append(trail, &c)
	}
	trail[1].Reason = "rewritten" // seq 8, re-chained up to the end
	for i := 1; i < len(trail); i++ {
		trail[i].PrevHash = trail[i-1].Hash
		trail[i].Hash = HashEntry(trail[i])
	}
	r, err := Verify(sliceSeq(trail), []*Checkpoint{cps[6], cps[9], cps[12]}, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if p := r.First(); p == nil || p.Kind != KindModified || p.Seq != 7 {
		t.Fatalf("got %v; want modified at seq 7 (entries 7..9 rewritten)", r.Problems)
	}
}
