package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strconv"
	"time"

	"github.com/tokenward/tokenward"
)

// PruneStore is a Store that can delete the oldest part of the trail
// (retention). Entries are deleted only up to a signed checkpoint, the
// anchor, which is kept: the first entry left chains to the hash it signs,
// so the rest still verifies.
type PruneStore interface {
	// AuditPruneAnchor returns the entry of the newest checkpoint whose
	// entry is stored and was recorded before before, with every
	// checkpoint stored at its seq (nil when there is none). Prune checks
	// them before it deletes anything: the store's rows are what someone
	// with write access to the database may have changed.
	AuditPruneAnchor(ctx context.Context, before time.Time) (*tokenward.AuditEntry, []*Checkpoint, error)
	// PruneAudit deletes at most limit entries with a seq up to through,
	// oldest first, and returns how many it deleted; once none is left it
	// also deletes the checkpoints of seqs before through.
	PruneAudit(ctx context.Context, through int64, limit int) (int, error)
}

// PruneAction is the action of the entry that records a retention prune.
// Its Meta[MetaPruneThrough] names the anchor: the entries up to it are
// deleted after the entry is stored and covered by a signed checkpoint.
// Verify accepts a trail that starts after seq 1 only with such an entry.
const (
	PruneAction      = "audit.prune"
	MetaPruneThrough = "through_seq"
)

// pruneBatch bounds the entries one delete statement removes, so that a
// first prune of a large trail does not hold the database's write lock
// for long.
const pruneBatch = 5000

// PruneResult is what Prune did.
type PruneResult struct {
	Through int64 // the anchor: entries up to it are gone (0: nothing pruned)
	Deleted int64 // entries deleted by this call
}

// Prune deletes the entries recorded before before, up to the newest
// signed checkpoint among them. First it records a PruneAction entry
// naming that checkpoint and signs a checkpoint that covers the entry, so
// that the deletion is itself in the signed trail: a head of the trail
// deleted by anyone else still verifies as deleted. A prune that fails
// half-way is finished by the next call (with another record).
//
// It needs a Signer, and a Store that implements PruneStore.
func (b *Broker) Prune(ctx context.Context, before time.Time) (PruneResult, error) {
	ps, ok := b.Store.(PruneStore)
	if !ok {
		return PruneResult{}, tokenward.Errorf(tokenward.EINVALID, "audit: prune: the store cannot delete entries")
	}
	if b.Signer == nil {
		return PruneResult{}, tokenward.Errorf(tokenward.EINVALID, "audit: prune: no signing key, so nothing anchors what would be left")
	}
	if err := b.Flush(ctx); err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	anchor, cps, err := ps.AuditPruneAnchor(ctx, before)
	if err != nil || anchor == nil {
		return PruneResult{}, err
	}
	if err := checkAnchor(anchor, cps, before, b.Signer.PublicKey()); err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	through := anchor.Seq
	rec := &tokenward.AuditEntry{Action: PruneAction, Resource: "audit", Outcome: tokenward.OutcomeAllowed,
		Reason: "retention: recorded before " + before.UTC().Format(time.RFC3339),
		Meta:   map[string]string{MetaPruneThrough: strconv.FormatInt(through, 10)}}
	if err := b.Record(ctx, rec); err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	if err := b.Flush(ctx); err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	cp, err := b.Checkpoint(ctx)
	if err != nil {
		return PruneResult{}, fmt.Errorf("audit: prune: %w", err)
	}
	if cp == nil || cp.Seq < rec.Seq {
		return PruneResult{}, fmt.Errorf("audit: prune: no checkpoint covers the prune's own entry %d", rec.Seq)
	}
	res := PruneResult{Through: through}
	for {
		n, err := ps.PruneAudit(ctx, through, pruneBatch)
		res.Deleted += int64(n)
		if err != nil {
			return res, fmt.Errorf("audit: prune through %d: %w", through, err)
		}
		if n < pruneBatch {
			return res, nil
		}
	}
}

// checkAnchor checks, before anything is deleted, that the anchor the
// store found is one: an entry that matches its hash, recorded before
// before, and that every checkpoint at its seq is signed by pub and names
// that hash (as Verify requires of the checkpoint a pruned trail starts
// after). The store chose it by the rows' time and seq columns; without
// the check, one entry's time dated back in the database made the server
// delete, and record and sign as retention, every entry up to its
// checkpoint, however recent, and verify then accepted the trail.
func checkAnchor(e *tokenward.AuditEntry, cps []*Checkpoint, before time.Time, pub ed25519.PublicKey) error {
	if HashEntry(e) != e.Hash {
		return tokenward.Errorf(tokenward.ECONFLICT, "entry %d, the newest checkpointed entry before the retention bound, does not match its hash: nothing deleted; run `tokenward audit verify`", e.Seq)
	}
	if !e.Time.Before(before) {
		return tokenward.Errorf(tokenward.ECONFLICT, "entry %d was recorded at %s, not before %s: nothing deleted", e.Seq, e.Time.UTC().Format(time.RFC3339), before.UTC().Format(time.RFC3339))
	}
	if len(cps) == 0 {
		return tokenward.Errorf(tokenward.ECONFLICT, "no checkpoint is stored at entry %d: nothing deleted", e.Seq)
	}
	for _, cp := range cps {
		if cp == nil || cp.Seq != e.Seq || !VerifyCheckpoint(cp, pub) || cp.Hash != e.Hash {
			return tokenward.Errorf(tokenward.ECONFLICT, "a checkpoint at entry %d is not this install's signature of that entry (key %s): nothing deleted; run `tokenward audit verify`", e.Seq, KeyID(pub))
		}
	}
	return nil
}

// pruneStart checks the head of a trail that does not start at seq 1: the
// first entry must chain to a valid checkpoint at the seq before it (the
// anchor a prune keeps). It returns the problem when it does not.
func pruneStart(first *tokenward.AuditEntry, i int64, trusted map[int64][]*Checkpoint) *Problem {
	anchor := first.Seq - 1
	cps := trusted[anchor]
	ok := len(cps) > 0
	for _, cp := range cps {
		ok = ok && cp.Hash == first.PrevHash
	}
	if ok {
		return nil
	}
	return &Problem{Kind: KindDeleted, Seq: 1, Index: i,
		Detail: fmt.Sprintf("entries 1..%d are missing, and no signed checkpoint at seq %d anchors the entry that starts the trail", anchor, anchor)}
}

// isPruneRecord reports whether e records the prune of the entries up to
// through.
func isPruneRecord(e *tokenward.AuditEntry, through int64) bool {
	return e.Action == PruneAction && e.Meta[MetaPruneThrough] == strconv.FormatInt(through, 10)
}
