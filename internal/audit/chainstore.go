package audit

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tokenward/tokenward"
)

// ChainStore is a Store that keeps the chain's head itself, so that several
// servers on one database append to one chain: the database, not a
// server's memory, decides which entry comes next. With it the broker
// group-commits concurrent Records into batches and never re-chains.
type ChainStore interface {
	// AppendChained stores es after the chain's last entry, in one
	// transaction that holds the chain's head locked from reading it to
	// commit: it links es to the head with Link (Seq, PrevHash and Hash are
	// set in es, computed in Go) and inserts them, all or none. The
	// entries' times are already truncated (Chain.Append's precision).
	AppendChained(ctx context.Context, es []*tokenward.AuditEntry) error
}

// Link chains es after the entry (seq, hash): consecutive Seqs from seq+1,
// each PrevHash the hash before it, each Hash from HashEntry. A ChainStore
// calls it under its head lock; the hash is never computed by the database,
// so verification needs nothing but this package's canonical encoding.
func Link(seq int64, hash string, es []*tokenward.AuditEntry) {
	for _, e := range es {
		seq++
		e.Seq, e.PrevHash = seq, hash
		e.Hash = HashEntry(e)
		hash = e.Hash
	}
}

// writeChained stores a group with AppendChained. The database serialises
// the servers, so there is nothing to retry: an error means the group is not
// stored (the transaction rolled back) or, if the commit's acknowledgement
// was lost, stored without the caller knowing — a request refused whose
// entry is in the chain, never one answered whose entry is not.
func (b *Broker) writeChained(ctx context.Context, cs ChainStore, es []*tokenward.AuditEntry) error {
	wctx, cancel := context.WithTimeout(ctx, groupWriteTimeout)
	defer cancel()
	err := truncateTimes(es)
	if err == nil {
		err = cs.AppendChained(wctx, es)
	}
	if err != nil {
		for _, e := range es {
			e.Seq, e.PrevHash, e.Hash = 0, "", ""
		}
		b.primaryFailures.Add(int64(len(es)))
		// An outage is logged where it starts, not once per group: N
		// servers refusing traffic while the database is down would flood
		// the log (the counter and the readiness check keep counting).
		level := slog.LevelError
		if b.storeFailing.Swap(true) {
			level = slog.LevelDebug
		}
		b.Logger.Log(ctx, level, "primary store did not record the entries; requests refused until it does", "entries", len(es), "err", err)
		return fmt.Errorf("audit: record: %w", err)
	}
	if b.storeFailing.Swap(false) {
		b.Logger.Info("primary store records entries again")
	}
	first, last := es[0], es[len(es)-1]
	b.chain.advance(last.Seq, last.Hash)
	// Group commits of one broker run one at a time: its sinks get its own
	// entries in Seq order (other servers' entries go to their sinks).
	for _, e := range es {
		b.enqueue(e)
	}
	b.recorded.Add(int64(len(es)))
	// Any server whose batch crosses a multiple of CheckpointEvery signs
	// its last entry: no leader is needed, and a checkpoint vouches only for
	// entries this server stored itself.
	if b.Signer != nil && b.CheckpointEvery > 0 && (first.Seq-1)/b.CheckpointEvery != last.Seq/b.CheckpointEvery {
		if err := b.writeCheckpoint(wctx, last.Seq, last.Hash); err != nil {
			b.checkpointFailures.Add(1)
			b.Logger.Error("checkpoint not stored", "seq", last.Seq, "err", err)
		}
	}
	return nil
}

// advance moves the chain's known head to (seq, hash) when that is past it:
// with a ChainStore the chain only remembers the last entry this server
// stored, for its shutdown checkpoint.
func (c *Chain) advance(seq int64, hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq > c.seq {
		c.seq, c.hash = seq, hash
	}
}
