package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/groupcommit"
)

// Store is the primary sink: the database, the source of truth. Each method
// is one transaction.
type Store interface {
	// AppendAudit stores e. It returns an *Error with ECONFLICT if an entry
	// with e.Seq exists (another writer appended first): the broker then
	// reloads the last entry and re-chains. A store shared by several
	// servers implements ChainStore, which the broker uses instead.
	AppendAudit(ctx context.Context, e *tokenward.AuditEntry) error
	// LastAudit returns the entry with the highest Seq, or nil, nil when
	// there is none.
	LastAudit(ctx context.Context) (*tokenward.AuditEntry, error)
	// AppendCheckpoint stores a signed checkpoint.
	AppendCheckpoint(ctx context.Context, cp *Checkpoint) error
}

// Sink is a secondary destination of entries (file, stdout, webhook,
// syslog). Write is called from one goroutine per sink, in Seq order, never
// on the request path; an error makes the broker retry with backoff.
type Sink interface {
	Name() string
	Write(ctx context.Context, e *tokenward.AuditEntry) error
	Close() error
}

// Defaults of the Broker's fields.
const (
	DefaultCheckpointEvery = 1000
	DefaultQueueSize       = 4096
	DefaultSinkAttempts    = 5
	defaultRetryBase       = 100 * time.Millisecond
	defaultRetryMax        = 5 * time.Second
	maxConflictRetries     = 3
)

// Broker records every entry in the primary Store, fail-closed, then hands
// it to every secondary Sink in the background. Set the fields, then Open.
type Broker struct {
	Store  Store
	Sinks  []Sink
	Signer *Signer // nil: no checkpoints
	// CheckpointEvery is the number of entries between checkpoints.
	CheckpointEvery int64
	// QueueSize bounds each sink's in-memory queue; when a sink falls that
	// far behind, new entries for it are dropped and counted.
	QueueSize int
	// SinkAttempts is how often a sink write is tried before the entry is
	// dropped for that sink.
	SinkAttempts int
	Logger       *slog.Logger
	Now          func() time.Time
	// Sleep waits between sink retries; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Journal, when set, puts a write-ahead journal in front of Store
	// (see Journal); nil: Record commits to Store before it returns.
	Journal *Journal

	chain   *Chain
	sinks   []*sinkWorker
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.RWMutex
	closed  bool

	group groupcommit.Group[*tokenward.AuditEntry] // group commit, for a BatchStore (group.go)

	storeFailing       atomic.Bool // the last chained group failed (chainstore.go)
	recorded           atomic.Int64
	primaryFailures    atomic.Int64
	checkpointFailures atomic.Int64
}

// NewBroker returns a broker with the default settings.
func NewBroker(store Store, signer *Signer, sinks ...Sink) *Broker {
	return &Broker{
		Store:           store,
		Sinks:           sinks,
		Signer:          signer,
		CheckpointEvery: DefaultCheckpointEvery,
		QueueSize:       DefaultQueueSize,
		SinkAttempts:    DefaultSinkAttempts,
		Logger:          slog.New(slog.DiscardHandler),
		Now:             time.Now,
		Sleep:           sleepCtx,
	}
}

type sinkWorker struct {
	sink    Sink
	queue   chan *tokenward.AuditEntry
	written atomic.Int64
	failed  atomic.Int64 // failed attempts
	dropped atomic.Int64 // entries given up on
}

// Open resumes the chain from the store's last entry and starts the sinks.
func (b *Broker) Open(ctx context.Context) error {
	if b.Store == nil {
		return tokenward.Errorf(tokenward.EINVALID, "audit: broker has no primary store")
	}
	if b.Logger == nil {
		b.Logger = slog.New(slog.DiscardHandler)
	}
	b.Logger = b.Logger.WithGroup("audit")
	if b.Now == nil {
		b.Now = time.Now
	}
	if b.Sleep == nil {
		b.Sleep = sleepCtx
	}
	if b.QueueSize <= 0 {
		b.QueueSize = DefaultQueueSize
	}
	if b.SinkAttempts <= 0 {
		b.SinkAttempts = DefaultSinkAttempts
	}
	b.group.Max = maxGroup
	// A journal append is a write to the page cache, a few µs: without a
	// yield its groups are of one, a system call per audited request.
	b.group.Gather = b.Journal != nil
	b.ctx, b.cancel = context.WithCancel(context.Background())
	for _, s := range b.Sinks {
		w := &sinkWorker{sink: s, queue: make(chan *tokenward.AuditEntry, b.QueueSize)}
		b.sinks = append(b.sinks, w)
		b.wg.Add(1)
		go b.run(w)
	}
	last, err := b.Store.LastAudit(ctx)
	if err != nil {
		b.stopSinks()
		return fmt.Errorf("audit: open: read last entry: %w", err)
	}
	if b.Journal != nil {
		// After the sinks start: replayed entries go to them too.
		if last, err = b.openJournal(ctx, last); err != nil {
			b.stopSinks()
			return fmt.Errorf("audit: open: %w", err)
		}
	}
	if b.chain, err = NewChain(last); err != nil {
		b.stopSinks()
		return fmt.Errorf("audit: open: %w", err)
	}
	return nil
}

// stopSinks ends the sink workers of a failed Open without closing the
// sinks, which stay the caller's.
func (b *Broker) stopSinks() {
	for _, w := range b.sinks {
		close(w.queue)
	}
	b.cancel()
	b.wg.Wait()
	b.sinks = nil
}

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit: broker closed")

// Record chains e, stores it in the primary store and queues it for every
// sink. The caller may reuse e afterwards but must not change its maps (CI,
// Meta): the journal keeps them until the entry is stored. If the primary store cannot record it, Record returns an error and
// the caller must refuse the request (fail-closed). Record sets e.Time from
// Now when it is zero, and fills e.Seq, e.PrevHash and e.Hash.
func (b *Broker) Record(ctx context.Context, e *tokenward.AuditEntry) error {
	b.closeMu.RLock()
	defer b.closeMu.RUnlock()
	if b.closed || b.chain == nil {
		return ErrClosed
	}
	switch {
	case e.Action == "":
		return tokenward.Errorf(tokenward.EINVALID, "audit: entry has no action")
	case e.Outcome != tokenward.OutcomeAllowed && e.Outcome != tokenward.OutcomeDenied && e.Outcome != tokenward.OutcomeError:
		return tokenward.Errorf(tokenward.EINVALID, "audit: entry outcome %q; want allowed, denied or error", clip(e.Outcome))
	case e.Status < 0 || e.Status > 999:
		// ParseCanonical (the journal's replay) reads 0..999 only.
		return tokenward.Errorf(tokenward.EINVALID, "audit: entry status %d; want 0 to 999", e.Status)
	}
	if e.Time.IsZero() {
		e.Time = b.Now()
	}
	redactEntry(e)
	if j := b.Journal; j != nil && !j.RecoverOnly {
		return b.recordJournaled(ctx, e)
	}
	// Group commits: e is stored with whatever other entries are queued.
	if cs, ok := b.Store.(ChainStore); ok {
		return b.group.Do(ctx, e, func(ctx context.Context, es []*tokenward.AuditEntry) error { return b.writeChained(ctx, cs, es) })
	}
	if bs, ok := b.Store.(BatchStore); ok {
		return b.group.Do(ctx, e, func(ctx context.Context, es []*tokenward.AuditEntry) error { return b.writeGroup(ctx, bs, es) })
	}
	reload := func() (*tokenward.AuditEntry, error) { return b.Store.LastAudit(ctx) }
	var err error
	for attempt := 0; attempt <= maxConflictRetries; attempt++ {
		err = b.chain.append(e, reload, func(e *tokenward.AuditEntry) error {
			if err := b.Store.AppendAudit(ctx, e); err != nil {
				return err
			}
			// Still under the chain's lock: sinks get entries in Seq order.
			b.enqueue(e)
			return nil
		})
		// After a failure the chain re-reads the store's tail before the
		// next append; a taken seq (another server) is worth a retry now.
		if err == nil || tokenward.ErrorCode(err) != tokenward.ECONFLICT {
			break
		}
	}
	if err != nil {
		b.primaryFailures.Add(1)
		b.Logger.Error("primary store did not record the entry; request refused", "action", e.Action, "err", err)
		return fmt.Errorf("audit: record: %w", err)
	}
	b.recorded.Add(1)
	if b.Signer != nil && b.CheckpointEvery > 0 && e.Seq%b.CheckpointEvery == 0 {
		// The entry is recorded; a missing checkpoint weakens truncation
		// detection but is no reason to refuse the request.
		if err := b.writeCheckpoint(ctx, e.Seq, e.Hash); err != nil {
			b.checkpointFailures.Add(1)
			b.Logger.Error("checkpoint not stored", "seq", e.Seq, "err", err)
		}
	}
	return nil
}

func (b *Broker) enqueue(e *tokenward.AuditEntry) {
	if len(b.sinks) == 0 {
		return
	}
	c := cloneEntry(e)
	for _, w := range b.sinks {
		select {
		case w.queue <- c:
		default:
			w.dropped.Add(1)
			b.Logger.Error("sink queue full; entry dropped for this sink", "sink", w.sink.Name(), "seq", c.Seq)
		}
	}
}

// Checkpoint signs and stores a checkpoint at the chain's current end
// (nothing when the chain is empty or there is no Signer). Call it on
// shutdown and whenever an operator asks.
func (b *Broker) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	if b.Signer == nil || b.chain == nil {
		return nil, nil
	}
	seq, hash := b.chain.Last()
	if j := b.Journal; j != nil && j.file != nil {
		seq, hash = j.storedEnd() // a checkpoint vouches for stored entries only
	}
	if seq == 0 {
		return nil, nil
	}
	cp := b.Signer.Sign(seq, hash, b.Now())
	if err := b.Store.AppendCheckpoint(ctx, cp); err != nil {
		b.checkpointFailures.Add(1)
		return nil, fmt.Errorf("audit: store checkpoint %d: %w", seq, err)
	}
	return cp, nil
}

func (b *Broker) writeCheckpoint(ctx context.Context, seq int64, hash string) error {
	return b.Store.AppendCheckpoint(ctx, b.Signer.Sign(seq, hash, b.Now()))
}

// run feeds one sink, retrying each entry with exponential backoff.
func (b *Broker) run(w *sinkWorker) {
	defer b.wg.Done()
	for e := range w.queue {
		delay := defaultRetryBase
		for attempt := 1; ; attempt++ {
			err := w.sink.Write(b.ctx, e)
			if err == nil {
				w.written.Add(1)
				break
			}
			w.failed.Add(1)
			// The error is the sink's own (I/O, HTTP status); entries and
			// their Meta HMACs are never logged, only their Seq.
			b.Logger.Warn("sink write failed", "sink", w.sink.Name(), "seq", e.Seq, "attempt", attempt, "err", err)
			if attempt >= b.SinkAttempts || b.Sleep(b.ctx, delay) != nil {
				w.dropped.Add(1)
				b.Logger.Error("entry dropped for sink", "sink", w.sink.Name(), "seq", e.Seq)
				break
			}
			delay = min(2*delay, defaultRetryMax)
		}
	}
}

// Close refuses further entries, writes a final checkpoint, lets the sinks
// drain their queues until ctx ends, and closes them.
func (b *Broker) Close(ctx context.Context) error {
	b.closeMu.Lock()
	if b.closed || b.chain == nil {
		b.closeMu.Unlock()
		return nil
	}
	b.closed = true
	b.closeMu.Unlock()
	// The journal's ingester stores what is left first, so the final
	// checkpoint covers it.
	err := b.closeJournal()
	if _, cerr := b.Checkpoint(ctx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	for _, w := range b.sinks {
		close(w.queue)
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		b.cancel() // stop retries; unwritten entries count as dropped
		<-done
	}
	// Sinks with their own buffer (the webhook) get what is left of ctx to
	// deliver it; whatever they cannot stays buffered for the next start.
	for _, w := range b.sinks {
		if f, ok := w.sink.(interface{ Flush(context.Context) error }); ok && ctx.Err() == nil {
			if ferr := f.Flush(ctx); ferr != nil {
				b.Logger.Warn("sink not flushed before close", "sink", w.sink.Name(), "err", ferr)
			}
		}
	}
	b.cancel()
	for _, w := range b.sinks {
		if cerr := w.sink.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("audit: close sink %s: %w", w.sink.Name(), cerr))
		}
	}
	return err
}

// Stats counts what the broker did, for metrics.
type Stats struct {
	Recorded           int64 // entries stored in the primary store
	PrimaryFailures    int64 // entries refused because the store (or the journal) failed
	CheckpointFailures int64
	// JournalPending counts entries in the journal not yet in the store;
	// IngestFailures counts batches the store refused from it.
	JournalPending int
	IngestFailures int64
	Sinks          []SinkStats
}

// SinkStats counts one sink's work.
type SinkStats struct {
	Name    string
	Written int64
	Failed  int64 // failed write attempts
	Dropped int64 // entries lost for this sink: queue full, retries exhausted, or the sink's own bound
	Queued  int
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	s := Stats{
		Recorded:           b.recorded.Load(),
		PrimaryFailures:    b.primaryFailures.Load(),
		CheckpointFailures: b.checkpointFailures.Load(),
	}
	if j := b.Journal; j != nil && j.file != nil {
		j.mu.Lock()
		s.JournalPending, s.IngestFailures = len(j.pending), j.ingestFailed
		j.mu.Unlock()
	}
	for _, w := range b.sinks {
		dropped := w.dropped.Load()
		// A sink that drops on its own (the webhook's bounded buffer) says so.
		if d, ok := w.sink.(interface{ Dropped() int64 }); ok {
			dropped += d.Dropped()
		}
		s.Sinks = append(s.Sinks, SinkStats{Name: w.sink.Name(), Written: w.written.Load(),
			Failed: w.failed.Load(), Dropped: dropped, Queued: len(w.queue)})
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
