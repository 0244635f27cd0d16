package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/webhook"
)

// WebhookSink posts entries in batches to URL as
// {"entries":[...]} (JSON), signed with Secret as every webhook is
// (docs/webhooks.md). Entries first go to an
// on-disk buffer in Dir, so an outage of the receiver, or a restart of the
// server, loses nothing until the buffer holds MaxBufferBytes of undelivered
// entries; past that, new entries are dropped, counted and logged. Delivery
// is at least once and in Seq order: after a crash between a delivery and
// the record of it, or after a request that timed out or that Close cut
// off, a batch may come again, so receivers dedupe by seq.
type WebhookSink struct {
	URL            string
	Secret         []byte
	Dir            string
	MaxBufferBytes int64 // default 64 MiB
	MaxBatch       int   // entries per request; default 100
	Logger         *slog.Logger
	// Delivery posts each batch. Open makes it retry every failure until
	// the sink is closed (the batch may not be skipped); each attempt's
	// Timeout defaults to 30 s.
	Delivery webhook.Deliverer

	mu   sync.Mutex
	q    *os.File // the buffer: JSON lines, appended
	size int64
	off  int64 // bytes of q already delivered
	wake chan struct{}
	// committed is signalled after each delivery, for Flush.
	committed chan struct{}
	stop      context.CancelFunc
	done      chan struct{}
	dropped   atomic.Int64
	sent      atomic.Int64
}

// NewWebhookSink returns a sink with the defaults; call Open.
func NewWebhookSink(rawURL string, secret []byte, dir string) *WebhookSink {
	return &WebhookSink{URL: rawURL, Secret: secret, Dir: dir}
}

func (s *WebhookSink) Name() string { return "webhook" }

const (
	webhookQueueFile  = "webhook.queue"
	webhookOffsetFile = "webhook.offset"
)

// Open validates the settings, loads the buffer left by a previous run and
// starts delivery.
func (s *WebhookSink) Open() error {
	if err := webhook.CheckURL(s.URL); err != nil {
		return fmt.Errorf("audit webhook: %w", err)
	}
	if len(s.Secret) < 16 {
		return tokenward.Errorf(tokenward.EINVALID, "audit webhook: signing secret must have at least 16 bytes")
	}
	if s.MaxBufferBytes <= 0 {
		s.MaxBufferBytes = 64 << 20
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = 100
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.Logger = s.Logger.With("sink", "webhook")
	s.Delivery.MaxAttempts = webhook.Forever
	if s.Delivery.Timeout <= 0 {
		s.Delivery.Timeout = 30 * time.Second
	}
	if s.Delivery.Logger == nil {
		s.Delivery.Logger = s.Logger
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("audit webhook: buffer dir: %w", err)
	}
	q, err := openAppend(filepath.Join(s.Dir, webhookQueueFile))
	if err != nil {
		return fmt.Errorf("audit webhook: %w", err)
	}
	fi, err := q.Stat()
	if err != nil {
		q.Close()
		return fmt.Errorf("audit webhook: %w", err)
	}
	s.q, s.size = q, fi.Size()
	s.off = s.readOffset()
	if s.off > s.size || !s.atLineStart(s.off) {
		// The buffer was emptied or rewritten after the offset was last
		// saved. From mid-line, every batch would be refused for good:
		// send everything again instead (duplicates, not loss).
		s.off = 0
	}
	s.wake = make(chan struct{}, 1)
	s.committed = make(chan struct{}, 1)
	s.done = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go s.deliver(ctx)
	return nil
}

func (s *WebhookSink) readOffset() int64 {
	b, err := os.ReadFile(filepath.Join(s.Dir, webhookOffsetFile))
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		// A damaged offset means redelivering everything: duplicates, not loss.
		return 0
	}
	return n
}

// atLineStart reports whether off is where a line of the buffer starts.
func (s *WebhookSink) atLineStart(off int64) bool {
	if off == 0 {
		return true
	}
	var b [1]byte
	_, err := s.q.ReadAt(b[:], off-1)
	return err == nil && b[0] == '\n'
}

func (s *WebhookSink) saveOffset(off int64) error {
	tmp := filepath.Join(s.Dir, webhookOffsetFile+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(off, 10)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.Dir, webhookOffsetFile))
}

// Write adds e to the on-disk buffer; it does not wait for delivery.
func (s *WebhookSink) Write(ctx context.Context, e *tokenward.AuditEntry) error {
	b, err := marshalLine(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.q == nil {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.size-s.off+int64(len(b)) > s.MaxBufferBytes {
		s.mu.Unlock()
		n := s.dropped.Add(1)
		s.Logger.Error("webhook buffer full; entry dropped", "seq", e.Seq, "dropped_total", n)
		return nil
	}
	n, err := s.q.Write(b)
	if err != nil && n > 0 {
		// Part of the line reached the buffer (a full disk): cut it, or the
		// broker's retry of the entry is glued onto it, a line that is not
		// JSON in a batch the receiver refuses, retried forever.
		if terr := s.q.Truncate(s.size); terr == nil {
			n = 0
		}
	}
	s.size += int64(n)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("webhook buffer: write: %w", err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Dropped returns how many entries were dropped because the buffer was full.
func (s *WebhookSink) Dropped() int64 { return s.dropped.Load() }

// Delivered returns how many entries the receiver accepted.
func (s *WebhookSink) Delivered() int64 { return s.sent.Load() }

// Pending returns the bytes of buffered, undelivered entries.
func (s *WebhookSink) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.off
}

const maxWebhookBatchBytes = 4 << 20

// nextBatch returns up to MaxBatch whole lines after the delivered offset,
// and the offset after them.
func (s *WebhookSink) nextBatch() (lines [][]byte, start, end int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.q == nil || s.off >= s.size {
		return nil, s.off, s.off, nil
	}
	n := min(s.size-s.off, maxWebhookBatchBytes)
	buf := make([]byte, n)
	if _, err := s.q.ReadAt(buf, s.off); err != nil && !errors.Is(err, io.EOF) {
		return nil, s.off, s.off, err
	}
	start, end = s.off, s.off
	for len(lines) < s.MaxBatch {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, buf[:i])
		end += int64(i + 1)
		buf = buf[i+1:]
	}
	if len(lines) == 0 {
		// One line longer than a whole batch: skip it rather than stall.
		end = s.off + n
		s.Logger.Error("webhook buffer holds an oversized line; skipped")
	}
	return lines, start, end, nil
}

// commit records that the buffer up to off was delivered, and reclaims the
// space when everything was.
func (s *WebhookSink) commit(off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		select {
		case s.committed <- struct{}{}:
		default:
		}
	}()
	s.off = off
	if s.q == nil {
		return
	}
	if s.off == s.size {
		// Empty the buffer, but only once the saved offset is 0: entries
		// appended later would sit below an older offset, and the next
		// Open would skip them, or start mid-line (a batch the receiver
		// refuses for good). A crash between the two sends everything
		// again: duplicates, never loss.
		if s.saveOffset(0) == nil {
			if err := s.q.Truncate(0); err == nil {
				s.size, s.off = 0, 0
				return
			}
		}
	}
	if err := s.saveOffset(s.off); err != nil {
		s.Logger.Warn("webhook buffer offset not saved; entries may be delivered twice", "err", err)
	}
	if s.off > 0 && s.off >= s.MaxBufferBytes/2 {
		s.compact()
	}
}

// compact moves the undelivered tail to the front of the buffer. The offset
// is reset first: a crash in between means duplicates, never loss.
func (s *WebhookSink) compact() {
	rest := make([]byte, s.size-s.off)
	if _, err := s.q.ReadAt(rest, s.off); err != nil && !errors.Is(err, io.EOF) {
		return
	}
	if err := s.saveOffset(0); err != nil {
		return
	}
	path := filepath.Join(s.Dir, webhookQueueFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, rest, 0o600); err != nil {
		s.saveOffset(s.off)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		s.saveOffset(s.off)
		return
	}
	q, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		s.Logger.Error("webhook buffer: reopen after compaction failed", "err", err)
		return
	}
	if _, err := q.Seek(0, io.SeekEnd); err != nil {
		q.Close()
		return
	}
	s.q.Close()
	s.q, s.size, s.off = q, int64(len(rest)), 0
}

func (s *WebhookSink) deliver(ctx context.Context) {
	defer close(s.done)
	for {
		lines, start, end, err := s.nextBatch()
		if err != nil {
			s.Logger.Error("webhook buffer: read failed", "err", err)
		}
		if len(lines) == 0 {
			if end > start {
				s.commit(end)
				continue
			}
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		var body bytes.Buffer
		body.WriteString(`{"entries":[`)
		body.Write(bytes.Join(lines, []byte{','}))
		body.WriteString("]}")
		if _, err := s.Delivery.Deliver(ctx, s.URL, s.Secret, body.Bytes()); err != nil {
			return // only when ctx ended: Forever retries everything else
		}
		s.sent.Add(int64(len(lines)))
		s.commit(end)
	}
}

// Flush waits until every buffered entry was delivered or ctx ends; call
// it before Close for a clean shutdown.
func (s *WebhookSink) Flush(ctx context.Context) error {
	for s.Pending() > 0 {
		select {
		case <-s.committed:
		case <-ctx.Done():
			return fmt.Errorf("audit webhook: flush: %d bytes undelivered: %w", s.Pending(), ctx.Err())
		}
	}
	return nil
}

// Close stops delivery (what is undelivered stays in the buffer for the
// next Open) and closes the buffer. It abandons a request in flight: the
// receiver may take that batch or not, so it stays buffered too.
func (s *WebhookSink) Close() error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.q == nil {
		return nil
	}
	err := s.q.Close()
	s.q = nil
	return err
}
