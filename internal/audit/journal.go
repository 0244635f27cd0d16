package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// Journal is the broker's write-ahead journal: an append-only file in
// front of the primary store. With it, Record chains the entry and appends
// it to the file before it returns, and a background ingester stores the
// entries in the primary store in batches up to IngestDelay later. A
// request then pays for one write(2) instead of a database transaction.
//
// Nothing is lost on the way: the journal is replayed into the store at the
// next Open after a crash, and if the store stops accepting entries,
// Record refuses every request from the first failed batch until it accepts
// them again (the entries already answered stay queued and are stored
// then). Only one process may hold a journal (an advisory lock), and its
// broker must be the only writer of its store's audit trail.
//
// Set the fields, then hand it to the Broker before Open.
type Journal struct {
	// Path is the journal file (created, mode 0600).
	Path string
	// RecoverOnly replays what an earlier run left in the journal at Open
	// and then lets Record commit to the store directly, as without a
	// journal. A server run without the journal uses it, so switching modes
	// after a crash loses nothing.
	RecoverOnly bool
	// SyncEvery is the longest an appended entry waits for the fsync that
	// makes it survive a power failure (default DefaultJournalSyncEvery).
	SyncEvery time.Duration
	// IngestDelay is how long the ingester gathers entries before it stores
	// a batch (default DefaultIngestDelay): longer means larger batches and
	// fewer store commits, and entries that reach searches later.
	IngestDelay time.Duration
	// MaxPending bounds the entries appended but not yet stored; Record
	// waits when it is reached (default DefaultMaxPending).
	MaxPending int
	// TruncateAt is the file size past which the ingester empties the
	// journal once everything in it is stored (default 8 MiB).
	TruncateAt int64

	file     *journalFile
	appendMu sync.Mutex // appends and resets of file

	mu           sync.Mutex
	pending      []*tokenward.AuditEntry // appended, not yet stored
	storedSeq    int64                   // the last entry in the store
	storedHash   string
	ingestErr    error // the last batch failed: Record refuses
	syncErr      error // the last background fsync failed: appends fsync themselves
	brokenErr    error // a failed append could not be undone: Record refuses
	dirty        bool  // appended since the last fsync
	urgent       bool  // a Flush waits: skip IngestDelay
	flushWake    chan struct{}
	progress     chan struct{}
	ingestFailed int64

	// While the store fails, the ingester retries after a backoff growing
	// from retryBase to retryMax, and sooner when woken (a refused Record,
	// a Flush), but no sooner than retryGap after its last failed attempt.
	retryBase, retryMax, retryGap time.Duration

	wake       chan struct{}
	stop, done chan struct{}
	syncStop   chan struct{}
	syncDone   chan struct{}
}

// Defaults of Journal's fields.
const (
	DefaultJournalSyncEvery = 50 * time.Millisecond
	// DefaultIngestDelay is short: at 30k audited requests a second,
	// 100 ms gathered 3,000 entries, whose back-to-back inserts held a core
	// for 20 ms ten times a second, and requests queued behind them (p99 of
	// reads under wrk: 10-12 ms at c=16 and 17-22 ms at c=64 with 100 ms,
	// 7.5-9 and 12-16 ms with 10 ms; throughput the same within the noise,
	// docs/benchmarks.md). At 10 ms a batch still holds hundreds of entries
	// under load. It needs the SQLite clock's own-commit window
	// (internal/sqlite walClock): without it, every batch emptied the read
	// cache, ten times as often.
	DefaultIngestDelay = 10 * time.Millisecond
	DefaultMaxPending  = 16384
	defaultTruncateAt  = 8 << 20
	maxIngestBatch     = 1024
)

// StoreSyncer is a Store whose commits may reach the disk after they
// return; SyncAudit makes everything committed so far durable. The journal
// calls it before it empties itself.
type StoreSyncer interface {
	SyncAudit() error
}

// openJournal opens the journal file, stores what an earlier run left in
// it after last (the store's last entry; the sinks get them too) and
// empties it. It returns the store's new last entry.
func (b *Broker) openJournal(ctx context.Context, last *tokenward.AuditEntry) (*tokenward.AuditEntry, error) {
	j := b.Journal
	if j.Path == "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: journal has no path")
	}
	if j.SyncEvery <= 0 {
		j.SyncEvery = DefaultJournalSyncEvery
	}
	if j.IngestDelay <= 0 {
		j.IngestDelay = DefaultIngestDelay
	}
	if j.MaxPending <= 0 {
		j.MaxPending = DefaultMaxPending
	}
	if j.TruncateAt <= 0 {
		j.TruncateAt = defaultTruncateAt
	}
	if j.retryBase <= 0 {
		j.retryBase, j.retryMax, j.retryGap = defaultRetryBase, defaultRetryMax, defaultRetryBase
	}
	f, entries, torn, err := openJournalFile(j.Path)
	if err != nil {
		return nil, err
	}
	if torn > 0 {
		b.Logger.Warn("audit journal ended in an incomplete write (a crash or power failure mid-append); cut off", "bytes", torn)
	}
	replay, err := journalReplay(last, entries)
	if err != nil {
		f.close()
		return nil, fmt.Errorf("%w; the journal is %s: move it aside to start, then run `tokenward audit verify`", err, j.Path)
	}
	if len(replay) > 0 {
		b.Logger.Info("storing audit entries left in the journal by the last run", "entries", len(replay), "from_seq", replay[0].Seq)
	}
	for len(replay) > 0 {
		n, err := b.storeEntries(ctx, replay[:min(len(replay), maxIngestBatch)])
		if err != nil {
			f.close()
			return nil, fmt.Errorf("audit: replay journal: %w", err)
		}
		last, replay = replay[n-1], replay[n:]
	}
	// Everything is in the store now: make it durable, then empty the file.
	if err := b.syncStore(); err != nil {
		f.close()
		return nil, err
	}
	if err := f.reset(); err != nil {
		f.close()
		return nil, err
	}
	if j.RecoverOnly {
		// Release the lock: servers without a journal may share a store.
		return last, f.close()
	}
	j.file = f
	if last != nil {
		j.storedSeq, j.storedHash = last.Seq, last.Hash
	}
	j.progress = make(chan struct{})
	j.wake = make(chan struct{}, 1)
	j.flushWake = make(chan struct{}, 1)
	j.stop, j.done = make(chan struct{}), make(chan struct{})
	j.syncStop, j.syncDone = make(chan struct{}), make(chan struct{})
	go b.ingestLoop()
	go j.syncLoop(b)
	return last, nil
}

// journalReplay returns the entries of the journal that the store does not
// hold, after checking that they continue its chain: the journal of another
// store, or entries the store lost, must not be glued on.
func journalReplay(last *tokenward.AuditEntry, entries []*tokenward.AuditEntry) ([]*tokenward.AuditEntry, error) {
	seq, hash := int64(0), GenesisHash
	if last != nil {
		seq, hash = last.Seq, last.Hash
	}
	i := 0
	for i < len(entries) && entries[i].Seq <= seq {
		if entries[i].Seq == seq && entries[i].Hash != hash {
			return nil, tokenward.Errorf(tokenward.ECONFLICT, "audit: journal entry %d differs from the stored one", seq)
		}
		i++
	}
	rest := entries[i:]
	for _, e := range rest {
		if e.Seq != seq+1 || e.PrevHash != hash {
			return nil, tokenward.Errorf(tokenward.ECONFLICT, "audit: journal entry %d does not continue the stored trail (which ends at %d)", e.Seq, seq)
		}
		seq, hash = e.Seq, e.Hash
	}
	return rest, nil
}

// recordJournaled is Record with a journal: chain, append, queue.
func (b *Broker) recordJournaled(ctx context.Context, e *tokenward.AuditEntry) error {
	j := b.Journal
	if err := j.admit(ctx); err != nil {
		b.primaryFailures.Add(1)
		return fmt.Errorf("audit: record: %w", err)
	}
	// Requests that arrive while an append runs share the next one: one
	// pwrite for their frames.
	err := b.group.Do(ctx, e, func(_ context.Context, es []*tokenward.AuditEntry) error {
		return b.chain.appendFramed(es, func(frames []byte) error { return j.append(es, frames) })
	})
	if err != nil {
		b.primaryFailures.Add(1)
		b.Logger.Error("journal did not record the entry; request refused", "action", e.Action, "err", err)
		return fmt.Errorf("audit: record: %w", err)
	}
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// admit refuses while the store or the journal is failing, and waits while
// MaxPending entries are not stored yet.
func (j *Journal) admit(ctx context.Context) error {
	for {
		j.mu.Lock()
		err := errors.Join(j.brokenErr, j.ingestErr)
		storeFailing := j.ingestErr != nil
		full := len(j.pending) >= j.MaxPending
		ch := j.progress
		j.mu.Unlock()
		if storeFailing {
			// Traffic is refused: ask the ingester to retry now rather than
			// at the end of its backoff, so the server takes requests again
			// as soon as the store is back (at most one attempt per
			// retryGap).
			select {
			case j.wake <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return fmt.Errorf("the audit store is not recording entries: %w", err)
		}
		if !full {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the audit store to catch up: %w", ctx.Err())
		}
	}
}

// append writes the frames of es and queues es for the store. It runs
// under the chain's lock, so frames are in Seq order.
func (j *Journal) append(es []*tokenward.AuditEntry, frames []byte) error {
	j.appendMu.Lock()
	defer j.appendMu.Unlock()
	j.mu.Lock()
	err := j.brokenErr
	mustSync := j.syncErr != nil
	j.mu.Unlock()
	if err != nil {
		return err
	}
	before := j.file.size
	err = j.file.append(frames)
	if err == nil && mustSync {
		// The background fsync failed: each append fsyncs until one works.
		// Frames that did not reach the disk are taken back: the chain
		// gives their seqs to the next entries.
		if err = j.file.sync(); err != nil {
			err = j.file.undo(before, err)
		}
	}
	if err != nil {
		if b, ok := errors.AsType[*journalBroken](err); ok {
			j.mu.Lock()
			j.brokenErr = b
			j.mu.Unlock()
		}
		return err
	}
	// Shallow copies: a caller may reuse its entry, but no caller changes
	// an entry's maps once recorded (Record's contract), and a deep copy per
	// request was a fifth of the audit's allocations.
	copies := make([]tokenward.AuditEntry, len(es))
	j.mu.Lock()
	if mustSync {
		j.syncErr = nil
	}
	for i, e := range es {
		copies[i] = *e
		j.pending = append(j.pending, &copies[i])
	}
	j.dirty = true
	j.mu.Unlock()
	return nil
}

// syncLoop fsyncs the journal every SyncEvery when something was appended.
func (j *Journal) syncLoop(b *Broker) {
	defer close(j.syncDone)
	t := time.NewTicker(j.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-j.syncStop:
			return
		case <-t.C:
			if err := j.syncNow(); err != nil {
				b.Logger.Error("audit journal fsync failed; appends fsync themselves until one succeeds", "err", err)
			}
		}
	}
}

func (j *Journal) syncNow() error {
	j.mu.Lock()
	dirty := j.dirty
	j.dirty = false
	j.mu.Unlock()
	if !dirty {
		return nil
	}
	err := j.file.sync()
	j.mu.Lock()
	if err != nil {
		j.syncErr, j.dirty = err, true
	} else {
		j.syncErr = nil
	}
	j.mu.Unlock()
	return err
}

// ingestLoop stores the journal's entries in batches until stop, then
// stores what is left. While the store fails, it retries after a backoff
// or when woken, whichever comes first, at most once per retryGap: a
// server refusing traffic tries a down database ten times a second at
// most (the default gap), an idle one every 5 s.
func (b *Broker) ingestLoop() {
	j := b.Journal
	defer close(j.done)
	retry := j.retryBase
	var failedAt time.Time // the end of the last failed attempt
	for {
		failing := b.ingestFailing()
		var wait <-chan time.Time
		if failing {
			wait = time.After(retry)
		}
		select {
		case <-j.stop:
			b.ingest(b.ctx, true)
			return
		case <-wait:
		case <-j.wake:
			if !failing {
				j.gather()
			} else if !j.pause(time.Until(failedAt.Add(j.retryGap))) {
				b.ingest(b.ctx, true)
				return
			}
		}
		if err := b.ingest(b.ctx, false); err != nil {
			failedAt = time.Now()
			retry = min(2*retry, j.retryMax)
			if !failing {
				retry = j.retryBase
			}
			continue
		}
		retry = j.retryBase
		b.maybeTruncate()
	}
}

// pause waits d, and returns false if the journal stops meanwhile.
func (j *Journal) pause(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-j.stop:
		return false
	}
}

func (b *Broker) ingestFailing() bool {
	j := b.Journal
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.ingestErr != nil
}

// gather waits IngestDelay for more entries, or less when a Flush waits.
// It does not listen to Record's wake-ups: waking the ingester for every
// entry cost each request a goroutine switch.
func (j *Journal) gather() {
	t := time.NewTimer(j.IngestDelay)
	defer t.Stop()
	for !j.takeUrgent() {
		select {
		case <-t.C:
			return
		case <-j.stop:
			return
		case <-j.flushWake:
		}
	}
}

func (j *Journal) takeUrgent() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	u := j.urgent
	j.urgent = false
	return u
}

// ingest stores pending entries in batches: with drain, until none is
// left; without, those pending when it starts, and more only while a full
// batch waits. Entries that arrive while a batch commits wait for the
// next gathering: draining until the journal was empty kept the ingester
// committing batches of a few entries back to back (at one connection,
// 3,300 commits a second of 4 entries each), and the gathering never ran.
func (b *Broker) ingest(ctx context.Context, drain bool) error {
	j := b.Journal
	j.mu.Lock()
	left := len(j.pending)
	j.mu.Unlock()
	for {
		j.mu.Lock()
		batch := j.pending[:min(len(j.pending), maxIngestBatch)]
		j.mu.Unlock()
		if len(batch) == 0 || !drain && left <= 0 && len(batch) < maxIngestBatch {
			return nil
		}
		left -= len(batch)
		n, err := b.storeEntries(ctx, batch)
		j.mu.Lock()
		if n > 0 {
			// What the store took is done, even when the rest failed: a
			// retry must not hand it to the sinks twice.
			j.pending = j.pending[n:]
			if len(j.pending) == 0 {
				j.pending = nil
			}
			last := batch[n-1]
			j.storedSeq, j.storedHash = last.Seq, last.Hash
		}
		if err != nil {
			if j.ingestErr == nil {
				b.Logger.Error("the audit store refused a batch from the journal; requests are refused until it accepts them", "entries", len(batch)-n, "from_seq", batch[n].Seq, "err", err)
			}
			j.ingestErr = err
			j.ingestFailed++
		} else {
			if j.ingestErr != nil {
				b.Logger.Info("the audit store accepts entries again")
			}
			j.ingestErr = nil
		}
		close(j.progress)
		j.progress = make(chan struct{})
		j.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// storeEntries stores chained entries in the primary store, hands those
// stored to the sinks and signs the checkpoints that fall among them, and
// returns how many it stored (a prefix of es). A conflict is resolved when
// the store holds exactly these entries already (a commit whose
// acknowledgement was lost).
func (b *Broker) storeEntries(ctx context.Context, es []*tokenward.AuditEntry) (int, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupWriteTimeout)
	defer cancel()
	done := 0
	for done < len(es) {
		rest := es[done:]
		n, err := 0, error(nil)
		if bs, ok := b.Store.(BatchStore); ok {
			if err = bs.AppendAuditBatch(wctx, rest); err == nil {
				n = len(rest)
			}
		} else {
			for _, e := range rest {
				if err = b.Store.AppendAudit(wctx, e); err != nil {
					break
				}
				n++
			}
		}
		b.stored(wctx, rest[:n])
		done += n
		if err == nil {
			continue
		}
		if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
			return done, err
		}
		rest = es[done:]
		last, lerr := b.Store.LastAudit(wctx)
		if lerr != nil {
			return done, errors.Join(err, lerr)
		}
		k := 0
		if last != nil {
			for k < len(rest) && rest[k].Seq <= last.Seq {
				k++
			}
		}
		if k == 0 || rest[k-1].Seq != last.Seq || rest[k-1].Hash != last.Hash {
			return done, fmt.Errorf("%w: the stored trail has entries this server did not write; one server per journal", err)
		}
		b.stored(wctx, rest[:k])
		done += k
	}
	return done, nil
}

// stored counts, fans out and checkpoints entries now in the store.
func (b *Broker) stored(ctx context.Context, es []*tokenward.AuditEntry) {
	b.recorded.Add(int64(len(es)))
	for _, e := range es {
		b.enqueue(e)
		if b.Signer != nil && b.CheckpointEvery > 0 && e.Seq%b.CheckpointEvery == 0 {
			if err := b.writeCheckpoint(ctx, e.Seq, e.Hash); err != nil {
				b.checkpointFailures.Add(1)
				b.Logger.Error("checkpoint not stored", "seq", e.Seq, "err", err)
			}
		}
	}
}

// maybeTruncate empties a journal grown past TruncateAt: appends wait while
// the last pending entries are stored and made durable.
func (b *Broker) maybeTruncate() {
	j := b.Journal
	j.appendMu.Lock()
	defer j.appendMu.Unlock()
	if j.file.size <= j.TruncateAt {
		return
	}
	if err := b.ingest(b.ctx, true); err != nil {
		return
	}
	if err := b.syncStore(); err != nil {
		b.Logger.Error("audit store sync failed; the journal is kept", "err", err)
		return
	}
	if err := j.file.reset(); err != nil {
		j.mu.Lock()
		j.brokenErr = err
		j.mu.Unlock()
		b.Logger.Error("audit journal reset failed; requests are refused", "err", err)
	}
}

func (b *Broker) syncStore() error {
	if s, ok := b.Store.(StoreSyncer); ok {
		if err := s.SyncAudit(); err != nil {
			return fmt.Errorf("audit: sync store: %w", err)
		}
	}
	return nil
}

// Flush waits until every entry recorded before the call is in the primary
// store (without a journal it returns at once): call it before reading the
// trail from the store. While the store refuses entries it asks for one
// more attempt and returns an error if that fails too.
func (b *Broker) Flush(ctx context.Context) error {
	j := b.Journal
	if j == nil || j.RecoverOnly || b.chain == nil {
		return nil
	}
	target, _ := b.chain.Last()
	retried := false
	for {
		j.mu.Lock()
		done, err, ch := j.storedSeq >= target, j.ingestErr, j.progress
		if !done {
			j.urgent = true
		}
		j.mu.Unlock()
		if done {
			return nil
		}
		if err != nil {
			if retried {
				return fmt.Errorf("audit: the store is not recording entries: %w", err)
			}
			retried = true
		}
		for _, w := range []chan struct{}{j.wake, j.flushWake} {
			select {
			case w <- struct{}{}:
			default:
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// closeJournal stops the ingester after it has stored what it can, and
// empties the journal when everything is stored (else the next Open
// replays the rest).
func (b *Broker) closeJournal() error {
	j := b.Journal
	if j == nil || j.file == nil {
		return nil
	}
	close(j.stop)
	<-j.done
	close(j.syncStop)
	<-j.syncDone
	j.mu.Lock()
	left := len(j.pending)
	j.mu.Unlock()
	err := j.file.sync()
	if left == 0 && err == nil {
		if err = b.syncStore(); err == nil {
			err = j.file.reset()
		}
	} else if left > 0 {
		b.Logger.Warn("audit entries left in the journal; they are stored at the next start", "entries", left)
	}
	return errors.Join(err, j.file.close())
}

// storedEnd is the seq and hash of the last entry in the primary store.
func (j *Journal) storedEnd() (int64, string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.storedSeq, j.storedHash
}

// appendFramed is append for the journal, for consecutive entries: write
// gets their frames, each frame's payload being the canonical encoding the
// entry's hash is computed over (encoded once). The chain advances only if
// write succeeds.
func (c *Chain) appendFramed(es []*tokenward.AuditEntry, write func(frames []byte) error) error {
	if err := truncateTimes(es); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// write does not keep the buffer, so one serves every append.
	if cap(c.frame) == 0 {
		c.frame = make([]byte, 0, 512)
	}
	frames := c.frame[:0]
	seq, hash := c.seq, c.hash
	for _, e := range es {
		seq++
		e.Seq, e.PrevHash = seq, hash
		start := len(frames)
		frames = appendCanonicalCI(append(frames, 0, 0, 0, 0, 0, 0, 0, 0), e, &c.ci) // frameHeaderSize bytes, sealed below
		frame := frames[start:]
		sealFrame(frame)
		sum := sha256.Sum256(frame[frameHeaderSize:])
		e.Hash = hex.EncodeToString(sum[:])
		hash = e.Hash
	}
	c.frame = frames[:0]
	if err := write(frames); err != nil {
		return fmt.Errorf("audit: write %s: %w", entryRange(es[0].Seq, seq), err)
	}
	c.seq, c.hash = seq, hash
	return nil
}
