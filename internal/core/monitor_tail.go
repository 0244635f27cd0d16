package core

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/monitor"
)

// Servers sharing a PostgreSQL database are one for detection: each reads
// the shared audit table after its cursor, in seq order, and feeds its
// monitor with every server's traffic (a burst spread over three servers
// is one burst, usage counts all of it, and a new leader's baselines are
// warm); only the leader stores anomalies, suspends, alerts and sends
// event webhooks, and the others publish change events to their own
// subscribers. The cursor is saved with the monitor's snapshot, so a
// starting server counts nothing twice.

// Tail defaults.
const (
	DefaultTailInterval = 250 * time.Millisecond
	DefaultTailBatch    = 500
)

// AuditTail reads the audit table for the monitor. It needs the store's
// seqs to become visible in order, with no gaps behind the head (the one
// audit chain of internal/postgres appends under a lock held to commit).
type AuditTail struct {
	Source audit.Searcher
	// Batch is how many entries one read returns (DefaultTailBatch if 0).
	Batch int

	// mu is held while entries are fed and while the monitor is
	// snapshotted, so a snapshot's cursor counts exactly its state.
	mu sync.Mutex
	// leading: this server acts on what it reads (LeadAuditTail). Set
	// under mu; cleared without it too when the leadership is lost, so a
	// poll under way stops acting at its next entry.
	leading atomic.Bool
	// actAfter: entries up to this seq were acted on by a leader before
	// (read at start and when the leadership is won), never again.
	actAfter int64
	wake     chan struct{}
}

// NewAuditTail returns a tail reading src.
func NewAuditTail(src audit.Searcher) *AuditTail {
	return &AuditTail{Source: src, Batch: DefaultTailBatch, wake: make(chan struct{}, 1)}
}

// wakeUp asks the tail to read now (an entry was just recorded here); it
// never blocks.
func (t *AuditTail) wakeUp() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// head returns the seq of the newest stored entry (0: none).
func (t *AuditTail) head(ctx context.Context) (int64, error) {
	es, err := t.Source.SearchAudit(ctx, audit.Query{Newest: true, Limit: 1})
	if err != nil || len(es) == 0 {
		return 0, err
	}
	return es[0].Seq, nil
}

// startTail places the cursor (LoadMonitorState, after the snapshot is
// restored): at the snapshot's, or at the head when there is none (or it
// is ahead of the table: another database). Entries up to the head are
// read, to count them, but never acted on by this server: a leader did.
func (c *Core) startTail(ctx context.Context) error {
	m := c.Monitoring
	t := m.Tail
	head, err := t.head(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := m.Monitor.Cursor(); cur == 0 || cur > head {
		m.Monitor.SetCursor(head)
	}
	t.actAfter = head
	return nil
}

// PollAuditTail reads the audit table from the cursor to the head, feeding
// the monitor and, on the leader, acting, and returns how many entries it
// read.
func (c *Core) PollAuditTail(ctx context.Context) (int, error) {
	t := c.Monitoring.Tail
	t.mu.Lock()
	defer t.mu.Unlock()
	return c.pollLocked(ctx)
}

func (c *Core) pollLocked(ctx context.Context) (int, error) {
	m := c.Monitoring
	t := m.Tail
	batch := t.Batch
	if batch <= 0 {
		batch = DefaultTailBatch
	}
	n := 0
	for {
		es, err := t.Source.SearchAudit(ctx, audit.Query{After: m.Monitor.Cursor(), Limit: batch})
		if err != nil {
			return n, err
		}
		for _, e := range es {
			c.observe(ctx, e, t.leading.Load() && e.Seq > t.actAfter)
			m.Monitor.SetCursor(e.Seq)
		}
		n += len(es)
		if len(es) < batch {
			return n, nil
		}
	}
}

// RunAuditTail polls every interval (DefaultTailInterval if 0), and
// sooner when an entry is recorded here, until ctx ends.
func (c *Core) RunAuditTail(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultTailInterval
	}
	m := c.Monitoring
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.Tail.wake:
		}
		_, err := c.PollAuditTail(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			m.logger().Warn("audit tail: read failed; retrying", "err", err)
			failing = true
		case err == nil && failing:
			m.logger().Info("audit tail: reading again")
			failing = false
		}
	}
}

// LeadAuditTail makes this server the one that acts on what its tail
// reads while ctx (the leadership) lasts: StartActing, then StopActing.
// lost is the cause of a leadership that ended because this server may
// no longer hold it (postgres.ErrLeadershipLost): when ctx's cause is
// lost, another server may lead already, so this one stops without
// acting or saving anything more.
func (c *Core) LeadAuditTail(ctx context.Context, lost error) error {
	c.StartActing(ctx)
	<-ctx.Done()
	// WithoutCancel drops the cause: read it first.
	wasLost := lost != nil && errors.Is(context.Cause(ctx), lost)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return c.StopActing(sctx, wasLost)
}

// StartActing makes this server act on the entries its tail reads after
// the cursor of the saved snapshot: the previous leader saved it when its
// leadership ended (StopActing), so what it acted on is not acted on
// twice.
func (c *Core) StartActing(ctx context.Context) {
	m := c.Monitoring
	t := m.Tail
	saved, err := c.savedCursor(ctx)
	if err != nil && ctx.Err() == nil {
		// Acting on a few entries twice beats not acting on them.
		m.logger().Warn("audit tail: the previous leader's cursor is unreadable; acting from this server's start", "err", err)
	}
	t.mu.Lock()
	t.actAfter = max(t.actAfter, saved)
	t.leading.Store(true)
	t.mu.Unlock()
}

// StopActing ends this server's acting on what its tail reads.
//
// A leader that steps down (lost false: it holds the leadership until it
// resigns) reads to the head a last time, still acting, stops acting and
// saves the snapshot with its cursor, so the next leader acts from
// exactly there.
//
// A leader that lost its leadership (lost true: the lock's connection
// failed, and another server may lead and act already) stops acting at
// once, even within a poll under way, and saves nothing: acting would
// suspend and alert a second time what the new leader acts on, and its
// snapshot could put an older cursor over the one the new leader saved.
// The new leader acts from the last saved cursor, as after a crash.
func (c *Core) StopActing(ctx context.Context, lost bool) error {
	m := c.Monitoring
	t := m.Tail
	if lost {
		// A poll under way stops acting at its next entry, and is waited
		// for, so nothing acts once this returns.
		t.leading.Store(false)
		t.mu.Lock()
		t.leading.Store(false)
		t.mu.Unlock()
		return nil
	}
	t.mu.Lock()
	_, err := c.pollLocked(ctx)
	t.leading.Store(false)
	var snap []byte
	if err == nil {
		snap, err = m.Monitor.Snapshot()
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	return c.saveSnapshot(ctx, snap)
}

// savedCursor returns the cursor of the saved snapshot (0: none, or
// unreadable).
func (c *Core) savedCursor(ctx context.Context) (int64, error) {
	snap, err := c.Monitoring.Store.MonitorState(ctx)
	switch {
	case tokenward.ErrorCode(err) == tokenward.ENOTFOUND:
		return 0, nil
	case err != nil:
		return 0, err
	}
	cur, err := monitor.SnapshotCursor(snap)
	if err != nil {
		return 0, nil
	}
	return cur, nil
}
