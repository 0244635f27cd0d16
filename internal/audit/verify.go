package audit

import (
	"cmp"
	"crypto/ed25519"
	"fmt"
	"iter"
	"slices"

	"github.com/tokenward/tokenward"
)

// Kind names what Verify found wrong.
type Kind string

// Problem kinds, from the evidence each leaves.
const (
	// KindModified: an entry no longer matches its own hash, or the chain's
	// links (or a checkpoint) show it was rewritten and re-hashed.
	KindModified Kind = "modified"
	// KindDeleted: a gap in Seq.
	KindDeleted Kind = "deleted"
	// KindInserted: an entry whose Seq was already taken.
	KindInserted Kind = "inserted"
	// KindReordered: every Seq is there, but not in order.
	KindReordered Kind = "reordered"
	// KindTruncated: a valid checkpoint names a Seq past the chain's end.
	KindTruncated Kind = "truncated"
	// KindCheckpoint: a checkpoint whose signature does not verify with the
	// install's public key (forged, altered, or signed by another key).
	KindCheckpoint Kind = "bad_checkpoint"
)

// Problem is one finding of Verify. Seq names the first entry concerned;
// Index is the entry's position in the input (from 0), or -1 when no entry
// is at hand (a truncated tail, a checkpoint).
type Problem struct {
	Kind   Kind   `json:"kind"`
	Seq    int64  `json:"seq"`
	Index  int64  `json:"index"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	return fmt.Sprintf("%s at seq %d: %s", p.Kind, p.Seq, p.Detail)
}

// Report is the result of Verify. Problems are ordered by Seq; the walk
// over the entries stops at the first problem it finds there, since what
// follows a break cannot be trusted to say more.
type Report struct {
	Entries           int64  `json:"entries"`     // entries read
	Checkpoints       int    `json:"checkpoints"` // checkpoints given
	LastSeq           int64  `json:"last_seq"`    // last entry verified
	LastHash          string `json:"last_hash"`
	LastCheckpointSeq int64  `json:"last_checkpoint_seq"` // last checkpoint matched by an entry
	// PrunedThrough is the anchor of a trail pruned by retention: the
	// entries up to it were deleted, as the entry at PruneRecordSeq
	// records (0: the trail starts at seq 1).
	PrunedThrough  int64     `json:"pruned_through,omitempty"`
	PruneRecordSeq int64     `json:"prune_record_seq,omitempty"`
	Problems       []Problem `json:"problems"`
}

// OK reports whether Verify found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// First returns the first problem, or nil.
func (r *Report) First() *Problem {
	if len(r.Problems) == 0 {
		return nil
	}
	return &r.Problems[0]
}

// reorderWindow bounds how far Verify looks ahead for a missing Seq to tell
// a reordering from a deletion.
const reorderWindow = 4096

// Verify checks entries, in the order they are stored (not sorted by Seq:
// that would hide a reordering), against the chain rules and against the
// checkpoints signed by pub. It returns an error only when entries cannot be
// read; tampering is reported in the Report.
//
// Without a later checkpoint, entries deleted from the tail are not
// detectable: a checkpoint proves the chain reached its Seq, nothing after.
func Verify(entries iter.Seq2[*tokenward.AuditEntry, error], checkpoints []*Checkpoint, pub ed25519.PublicKey) (*Report, error) {
	if len(checkpoints) > 0 && len(pub) != ed25519.PublicKeySize {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: verify: checkpoints given without a valid Ed25519 public key")
	}
	r := &Report{Checkpoints: len(checkpoints), LastHash: GenesisHash}
	// Checkpoints come in any order, and several servers may sign the same
	// seq (each at its own shutdown): every one of them must match.
	trusted := map[int64][]*Checkpoint{}
	var maxTrusted int64
	for _, cp := range checkpoints {
		if cp == nil || !VerifyCheckpoint(cp, pub) {
			seq := int64(0)
			if cp != nil {
				seq = cp.Seq
			}
			r.Problems = append(r.Problems, Problem{Kind: KindCheckpoint, Seq: seq, Index: -1,
				Detail: fmt.Sprintf("checkpoint for seq %d has no valid signature by key %s", seq, KeyID(pub))})
			continue
		}
		trusted[cp.Seq] = append(trusted[cp.Seq], cp)
		maxTrusted = max(maxTrusted, cp.Seq)
	}

	next, stop := iter.Pull2(entries)
	defer stop()
	p := &peeker{next: next}
	walkProblem, err := walk(p, r, trusted)
	if err != nil {
		return r, fmt.Errorf("audit: verify: read entries: %w", err)
	}
	switch {
	case walkProblem != nil:
		r.Problems = append(r.Problems, *walkProblem)
	case r.PrunedThrough > 0 && (r.PruneRecordSeq == 0 || r.PruneRecordSeq > r.LastCheckpointSeq):
		// The anchor alone does not show that the server pruned: anyone
		// may delete the head of the trail up to a checkpoint. The
		// server records each prune first, under a signed checkpoint.
		r.Problems = append(r.Problems, Problem{Kind: KindDeleted, Seq: 1, Index: -1,
			Detail: fmt.Sprintf("entries 1..%d are missing, and no %s entry under a signed checkpoint records their deletion", r.PrunedThrough, PruneAction)})
	case maxTrusted > r.LastSeq:
		r.Problems = append(r.Problems, Problem{Kind: KindTruncated, Seq: r.LastSeq + 1, Index: -1,
			Detail: fmt.Sprintf("a checkpoint was signed at seq %d but the chain ends at seq %d: entries from %d on were deleted", maxTrusted, r.LastSeq, r.LastSeq+1)})
	}
	slices.SortStableFunc(r.Problems, func(a, b Problem) int { return cmp.Compare(a.Seq, b.Seq) })
	return r, nil
}

// walk checks the entries in order and returns the first problem.
func walk(p *peeker, r *Report, trusted map[int64][]*Checkpoint) (*Problem, error) {
	expSeq, prevHash := int64(1), GenesisHash
	var lastGoodCP int64
	for i := int64(0); ; i++ {
		e, ok, err := p.get(0)
		if err != nil || !ok {
			return nil, err
		}
		p.drop()
		r.Entries++
		if e == nil {
			return &Problem{Kind: KindModified, Seq: expSeq, Index: i, Detail: "empty entry"}, nil
		}
		if HashEntry(e) != e.Hash {
			return &Problem{Kind: KindModified, Seq: e.Seq, Index: i,
				Detail: fmt.Sprintf("entry %d does not match its hash", e.Seq)}, nil
		}
		if i == 0 && e.Seq > 1 {
			// A trail pruned by retention starts after its anchor.
			if prob := pruneStart(e, i, trusted); prob != nil {
				// Unless an entry before it is stored a little later: the
				// head was reordered, not deleted.
				if f, err := p.find(func(f *tokenward.AuditEntry) bool { return f.Seq < e.Seq }); err != nil {
					return nil, err
				} else if f != nil {
					return &Problem{Kind: KindReordered, Seq: e.Seq, Index: i,
						Detail: fmt.Sprintf("entry %d is stored before entry %d", e.Seq, f.Seq)}, nil
				}
				return prob, nil
			}
			expSeq, prevHash = e.Seq, e.PrevHash
			r.PrunedThrough = e.Seq - 1
			lastGoodCP = r.PrunedThrough // its checkpoint holds: a rewrite starts after it
		}
		switch {
		case e.Seq == expSeq:
			if e.PrevHash != prevHash {
				if e.Seq == 1 {
					return &Problem{Kind: KindModified, Seq: 1, Index: i,
						Detail: "the first entry does not start from the genesis hash: the head of the chain was removed and the rest renumbered"}, nil
				}
				return &Problem{Kind: KindModified, Seq: e.Seq - 1, Index: i - 1,
					Detail: fmt.Sprintf("entry %d is not chained to entry %d as stored: entry %d was rewritten and re-hashed (or an entry near it was removed or added and the rest renumbered)", e.Seq, e.Seq-1, e.Seq-1)}, nil
			}
			if cps, ok := trusted[e.Seq]; ok {
				for _, cp := range cps {
					if cp.Hash != e.Hash {
						return &Problem{Kind: KindModified, Seq: lastGoodCP + 1, Index: -1,
							Detail: fmt.Sprintf("the checkpoint signed at seq %d names another hash than entry %d holds: entries %d..%d were rewritten and re-chained", e.Seq, e.Seq, lastGoodCP+1, e.Seq)}, nil
					}
				}
				lastGoodCP = e.Seq
				r.LastCheckpointSeq = e.Seq
			}
			if r.PrunedThrough > 0 && r.PruneRecordSeq == 0 && isPruneRecord(e, r.PrunedThrough) {
				r.PruneRecordSeq = e.Seq
			}
			expSeq, prevHash = e.Seq+1, e.Hash
			r.LastSeq, r.LastHash = e.Seq, e.Hash
		case e.Seq > expSeq:
			// The missing Seq stored a little later means a reordering;
			// never at all, a deletion.
			want := expSeq
			if f, err := p.find(func(f *tokenward.AuditEntry) bool { return f.Seq == want }); err != nil {
				return nil, err
			} else if f != nil {
				return &Problem{Kind: KindReordered, Seq: e.Seq, Index: i,
					Detail: fmt.Sprintf("entry %d is stored before entry %d", e.Seq, expSeq)}, nil
			}
			return &Problem{Kind: KindDeleted, Seq: expSeq, Index: i,
				Detail: fmt.Sprintf("entries %d..%d are missing", expSeq, e.Seq-1)}, nil
		case e.Seq == expSeq-1 && e.Seq >= 1:
			// Two entries with one Seq: the one the next entry chains to is
			// the original, the other the insertion.
			idx := i
			if f, ok, err := p.get(0); err != nil {
				return nil, err
			} else if ok && f != nil && f.PrevHash == e.Hash && e.Hash != prevHash {
				idx = i - 1
			}
			return &Problem{Kind: KindInserted, Seq: e.Seq, Index: idx,
				Detail: fmt.Sprintf("two entries have seq %d; the one at index %d is not part of the chain", e.Seq, idx)}, nil
		default:
			return &Problem{Kind: KindInserted, Seq: e.Seq, Index: i,
				Detail: fmt.Sprintf("entry with seq %d stored after entry %d: its seq was already taken", e.Seq, expSeq-1)}, nil
		}
	}
}

// peeker adds a lookahead buffer to a pulled iterator.
type peeker struct {
	next func() (*tokenward.AuditEntry, error, bool)
	buf  []*tokenward.AuditEntry
	done bool
}

// get returns the k-th entry not yet dropped.
func (p *peeker) get(k int) (*tokenward.AuditEntry, bool, error) {
	for len(p.buf) <= k && !p.done {
		e, err, ok := p.next()
		if !ok {
			p.done = true
			break
		}
		if err != nil {
			return nil, false, err
		}
		p.buf = append(p.buf, e)
	}
	if k < len(p.buf) {
		return p.buf[k], true, nil
	}
	return nil, false, nil
}

// find returns the first of the next reorderWindow entries (not yet
// dropped) that match, or nil.
func (p *peeker) find(match func(*tokenward.AuditEntry) bool) (*tokenward.AuditEntry, error) {
	for k := 0; k < reorderWindow; k++ {
		f, ok, err := p.get(k)
		if err != nil || !ok {
			return nil, err
		}
		if f != nil && match(f) {
			return f, nil
		}
	}
	return nil, nil
}

// drop forgets the first buffered entry.
func (p *peeker) drop() { p.buf = p.buf[1:] }
