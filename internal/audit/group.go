package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenward/tokenward"
)

// BatchStore is a Store that appends many entries in one transaction. With
// it the broker commits group-wise: requests that arrive while a commit is
// running share the next one, so a durable (fsync'd) commit per entry does
// not cap the request rate at the disk's flush rate.
type BatchStore interface {
	// AppendAuditBatch stores es (consecutive seqs, chained) all or none;
	// ECONFLICT if any seq exists.
	AppendAuditBatch(ctx context.Context, es []*tokenward.AuditEntry) error
}

// maxGroup bounds the entries of one group commit.
const maxGroup = 512

// groupWriteTimeout bounds one group commit; it does not follow the
// leader's request context, since the group holds other requests' entries.
const groupWriteTimeout = 30 * time.Second

// writeGroup chains and stores a group in one transaction; on a conflict
// (another server appended) it re-reads the store's end and re-chains.
func (b *Broker) writeGroup(ctx context.Context, bs BatchStore, es []*tokenward.AuditEntry) error {
	wctx, cancel := context.WithTimeout(ctx, groupWriteTimeout)
	defer cancel()
	reload := func() (*tokenward.AuditEntry, error) { return b.Store.LastAudit(wctx) }
	var err error
	for attempt := 0; attempt <= maxConflictRetries; attempt++ {
		err = b.chain.appendBatch(es, reload, func(es []*tokenward.AuditEntry) error {
			if err := bs.AppendAuditBatch(wctx, es); err != nil {
				return err
			}
			for _, e := range es {
				b.enqueue(e)
			}
			return nil
		})
		if err == nil || tokenward.ErrorCode(err) != tokenward.ECONFLICT {
			break
		}
	}
	if err != nil {
		b.primaryFailures.Add(int64(len(es)))
		b.Logger.Error("primary store did not record the entries; requests refused", "entries", len(es), "err", err)
		return fmt.Errorf("audit: record: %w", err)
	}
	b.recorded.Add(int64(len(es)))
	if b.Signer != nil && b.CheckpointEvery > 0 {
		for _, e := range es {
			if e.Seq%b.CheckpointEvery == 0 {
				if err := b.writeCheckpoint(wctx, e.Seq, e.Hash); err != nil {
					b.checkpointFailures.Add(1)
					b.Logger.Error("checkpoint not stored", "seq", e.Seq, "err", err)
				}
			}
		}
	}
	return nil
}
