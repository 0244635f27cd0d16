package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// faultyStore is a real FileStore that can be told to fail, the way a
// database with an unwritable audit table or a commit that times out does.
type faultyStore struct {
	*FileStore
	failAppend      atomic.Bool // refuse to append
	failAfterCommit atomic.Bool // append, then report an error
	failCheckpoint  atomic.Bool
}

var errDiskGone = errors.New("disk I/O error")

func (s *faultyStore) AppendAudit(ctx context.Context, e *tokenward.AuditEntry) error {
	if s.failAppend.Load() {
		return errDiskGone
	}
	if err := s.FileStore.AppendAudit(ctx, e); err != nil {
		return err
	}
	if s.failAfterCommit.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func (s *faultyStore) AppendCheckpoint(ctx context.Context, cp *Checkpoint) error {
	if s.failCheckpoint.Load() {
		return errDiskGone
	}
	return s.FileStore.AppendCheckpoint(ctx, cp)
}

func openBroker(t *testing.T, store Store, sinks ...Sink) *Broker {
	t.Helper()
	b := NewBroker(store, mustSigner(t, 1), sinks...)
	b.Now, b.Sleep, b.CheckpointEvery = newTestClock().Now, noSleep, 5
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustVerifyStore(t *testing.T, fs *FileStore, wantLast int64) {
	t.Helper()
	ctx := context.Background()
	cps, err := fs.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Verify(fs.AuditEntries(ctx), cps, mustSigner(t, 1).PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.LastSeq != wantLast {
		t.Fatalf("got report %+v; want a clean chain to seq %d", r, wantLast)
	}
}

func TestBrokerFailClosed(t *testing.T) {
	ctx := context.Background()
	store := &faultyStore{FileStore: mustFileStore(t, "")}
	var sinkOut bytes.Buffer
	b := openBroker(t, store, NewWriterSink("buf", &sinkOut))
	for i := 1; i <= 3; i++ {
		if err := b.Record(ctx, newEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	store.failAppend.Store(true)
	err := b.Record(ctx, newEntry(4))
	if !errors.Is(err, errDiskGone) {
		t.Fatalf("got %v; want the store's error, so the request is refused", err)
	}
	store.failAppend.Store(false)
	// A commit whose acknowledgement is lost: Record fails, yet the store
	// holds the entry; the next Record must continue after it, not fork.
	store.failAfterCommit.Store(true)
	if err := b.Record(ctx, newEntry(5)); err == nil {
		t.Fatal("got nil; want the error of the lost acknowledgement")
	}
	store.failAfterCommit.Store(false)
	e := newEntry(6)
	if err := b.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 5 {
		t.Errorf("got seq %d after a refused and a committed-but-failed entry; want 5", e.Seq)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mustVerifyStore(t, store.FileStore, 5)
	if st := b.Stats(); st.Recorded != 4 || st.PrimaryFailures != 2 {
		t.Errorf("got recorded %d, primary failures %d; want 4, 2", st.Recorded, st.PrimaryFailures)
	}
	// The refused entry never reached a sink; the acknowledged-late one was
	// not sent either (it was never reported recorded).
	var seqs []int64
	sc := bufio.NewScanner(&sinkOut)
	for sc.Scan() {
		var e tokenward.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
	}
	if want := []int64{1, 2, 3, 5}; !equalInts(seqs, want) {
		t.Errorf("got sink seqs %v; want %v", seqs, want)
	}
}

func TestBrokerClosed(t *testing.T) {
	b := openBroker(t, mustFileStore(t, ""))
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Record(context.Background(), newEntry(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v; want ErrClosed", err)
	}
}

// TestBrokerConflict: another server appended the next seq first; the
// broker must re-read the tail and chain after it.
func TestBrokerConflict(t *testing.T) {
	ctx := context.Background()
	fs := mustFileStore(t, "")
	b1 := openBroker(t, fs)
	b2 := openBroker(t, fs)
	for i := 1; i <= 6; i++ {
		b := b1
		if i%2 == 0 {
			b = b2
		}
		e := newEntry(i)
		if err := b.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i) {
			t.Fatalf("got seq %d; want %d", e.Seq, i)
		}
	}
	mustVerifyStore(t, fs, 6)
}

func TestBrokerCheckpointFailureDoesNotRefuse(t *testing.T) {
	ctx := context.Background()
	store := &faultyStore{FileStore: mustFileStore(t, "")}
	store.failCheckpoint.Store(true)
	b := openBroker(t, store)
	for i := 1; i <= 5; i++ {
		if err := b.Record(ctx, newEntry(i)); err != nil {
			t.Fatalf("got %v; want entries recorded although checkpoints fail", err)
		}
	}
	if got := b.Stats().CheckpointFailures; got != 1 {
		t.Errorf("got %d checkpoint failures; want 1", got)
	}
}

// TestBrokerSinksInOrder: concurrent requests; every sink sees every entry
// once, in Seq order.
func TestBrokerSinksInOrder(t *testing.T) {
	ctx := context.Background()
	var out1, out2 bytes.Buffer
	b := openBroker(t, mustFileStore(t, ""), NewWriterSink("a", &out1), NewWriterSink("b", &out2))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := b.Record(ctx, newEntry(i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, out := range []*bytes.Buffer{&out1, &out2} {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 200 {
			t.Fatalf("got %d lines; want 200", len(lines))
		}
		for i, l := range lines {
			var e tokenward.AuditEntry
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != int64(i+1) {
				t.Fatalf("got seq %d at line %d; want %d", e.Seq, i, i+1)
			}
		}
	}
}

// flakyWriter fails its first n writes.
type flakyWriter struct {
	mu   sync.Mutex
	n    int
	buf  bytes.Buffer
	errs int
}

func (w *flakyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.errs < w.n {
		w.errs++
		return 0, errors.New("device not ready")
	}
	return w.buf.Write(p)
}

// TestBrokerSinkRetryAndSecrets: a failing sink is retried with growing
// delays, and nothing logged carries an entry's values.
func TestBrokerSinkRetryAndSecrets(t *testing.T) {
	ctx := context.Background()
	const metaHMAC = "hmac-7f3e9a11c0ffee5ecre7"
	var logs bytes.Buffer
	w := &flakyWriter{n: 3}
	store := &faultyStore{FileStore: mustFileStore(t, "")}
	b := NewBroker(store, mustSigner(t, 1), NewWriterSink("flaky", w))
	var mu sync.Mutex
	var delays []time.Duration
	b.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
		return nil
	}
	b.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEntry(1)
	e.Meta = map[string]string{"value_hmac": metaHMAC}
	if err := b.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	store.failAppend.Store(true)
	e2 := newEntry(2)
	e2.Meta = map[string]string{"value_hmac": metaHMAC}
	if err := b.Record(ctx, e2); err == nil {
		t.Fatal("got nil; want an error")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().Sinks[0]; got.Written != 1 || got.Failed != 3 || got.Dropped != 0 {
		t.Errorf("got %+v; want written 1 after 3 failed attempts, none dropped", got)
	}
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}; fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Errorf("got retry delays %v; want %v", delays, want)
	}
	if !strings.Contains(w.buf.String(), metaHMAC) {
		t.Fatal("test setup: the sink did not get the entry")
	}
	for _, secret := range []string{metaHMAC, "payments/prod/STRIPE_KEY", "203.0.113.7"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("got logs holding %q; want no entry values in logs:\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "sink write failed") || !strings.Contains(logs.String(), "request refused") {
		t.Errorf("got logs %s; want the sink failure and the refusal logged", logs.String())
	}
}

func TestBrokerSinkQueueFullDrops(t *testing.T) {
	ctx := context.Background()
	block := make(chan struct{})
	s := &blockingSink{release: block, started: make(chan struct{})}
	b := NewBroker(mustFileStore(t, ""), nil, s)
	b.QueueSize = 2
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	// One entry is taken by the blocked worker, two wait in the queue, the
	// rest are dropped: the request path never waits on a slow sink.
	for i := 1; i <= 6; i++ {
		if err := b.Record(ctx, newEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	<-s.started
	close(block)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := b.Stats().Sinks[0]
	if st.Written+st.Dropped != 6 || st.Dropped < 3 {
		t.Errorf("got written %d dropped %d; want 6 in all, at least 3 dropped", st.Written, st.Dropped)
	}
}

type blockingSink struct {
	release chan struct{}
	started chan struct{}
	once    sync.Once
}

func (s *blockingSink) Name() string { return "blocking" }
func (s *blockingSink) Write(ctx context.Context, e *tokenward.AuditEntry) error {
	s.once.Do(func() { close(s.started) })
	<-s.release
	return nil
}
func (s *blockingSink) Close() error { return nil }

// BenchmarkBrokerRecord measures Record with a file-backed primary store,
// with and without fsync per entry, and a file sink.
func BenchmarkBrokerRecord(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", sync), func(b *testing.B) {
			fs := NewFileStore(b.TempDir())
			fs.Sync = sync
			if err := fs.Open(); err != nil {
				b.Fatal(err)
			}
			defer fs.Close()
			br := NewBroker(fs, mustSigner(b, 1), NewFileSink(b.TempDir()+"/audit.log"))
			if err := br.Open(context.Background()); err != nil {
				b.Fatal(err)
			}
			e := newEntry(1)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c := *e
				c.Time = time.Time{}
				if err := br.Record(context.Background(), &c); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			br.Close(context.Background())
		})
	}
}
