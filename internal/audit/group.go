package audit

import (
	"context"
	"fmt"
	"sync"
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

type groupReq struct {
	e    *tokenward.AuditEntry
	done chan error
}

type groupState struct {
	mu      sync.Mutex
	pending []*groupReq
	leading bool
}

// recordGroup queues e for the next group commit and waits for its result.
// The first caller to find no commit running leads: it commits what is
// queued (its own entry included), hands the lead on if more arrived, and
// returns.
func (b *Broker) recordGroup(ctx context.Context, bs BatchStore, e *tokenward.AuditEntry) error {
	req := &groupReq{e: e, done: make(chan error, 1)}
	g := &b.group
	g.mu.Lock()
	g.pending = append(g.pending, req)
	if g.leading {
		g.mu.Unlock()
		// No early return on ctx: the leader writes e, and the caller must
		// not see it half-chained.
		return <-req.done
	}
	g.leading = true
	g.mu.Unlock()
	b.leadGroups(ctx, bs, true)
	return <-req.done
}

// leadGroups commits queued entries. When once is set it returns after one
// group and, if more are queued, passes the lead to a new goroutine, so a
// request's latency is its own group's, not everyone's after it.
func (b *Broker) leadGroups(ctx context.Context, bs BatchStore, once bool) {
	g := &b.group
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		if n > 0 {
			err := b.writeGroup(ctx, bs, batch)
			for _, r := range batch {
				r.done <- err
			}
		}
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.leading = false
			g.pending = nil
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		if once {
			go b.leadGroups(context.WithoutCancel(ctx), bs, false)
			return
		}
	}
}

// writeGroup chains and stores a group in one transaction; on a conflict
// (another server appended) it re-reads the store's end and re-chains.
func (b *Broker) writeGroup(ctx context.Context, bs BatchStore, batch []*groupReq) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupWriteTimeout)
	defer cancel()
	es := make([]*tokenward.AuditEntry, len(batch))
	for i, r := range batch {
		es[i] = r.e
	}
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

// appendBatch is append for consecutive entries, written by one call.
func (c *Chain) appendBatch(es []*tokenward.AuditEntry, reload func() (*tokenward.AuditEntry, error), write func([]*tokenward.AuditEntry) error) error {
	for _, e := range es {
		if e.Time.IsZero() {
			return tokenward.Errorf(tokenward.EINVALID, "audit: entry has no time")
		}
		e.Time = e.Time.Round(0).UTC().Truncate(time.Microsecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stale && reload != nil {
		last, err := reload()
		if err != nil {
			return fmt.Errorf("audit: reload last entry: %w", err)
		}
		if err := c.resetLocked(last); err != nil {
			return err
		}
	}
	seq, hash := c.seq, c.hash
	for _, e := range es {
		seq++
		e.Seq, e.PrevHash = seq, hash
		e.Hash = HashEntry(e)
		hash = e.Hash
	}
	if err := write(es); err != nil {
		c.stale = reload != nil
		return fmt.Errorf("audit: write entries %d..%d: %w", es[0].Seq, seq, err)
	}
	c.seq, c.hash = seq, hash
	return nil
}
