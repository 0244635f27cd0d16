package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/webhook"
)

func TestFileSinkRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	s := NewFileSink(path)
	s.MaxBytes, s.Keep = 2000, 2
	entries, _ := buildChain(t, 40, nil, 0)
	for _, e := range entries {
		if err := s.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("got %v for %s.3; want it removed (Keep 2)", err, path)
	}
	// The kept files, oldest first, hold a run of seqs ending at 40.
	var seqs []int64
	for _, p := range []string{path + ".2", path + ".1", path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > s.MaxBytes {
			t.Errorf("got %s of %d bytes; want at most %d", p, fi.Size(), s.MaxBytes)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("got %s mode %04o; want 0600", p, fi.Mode().Perm())
		}
		for _, e := range readLines(t, p) {
			seqs = append(seqs, e.Seq)
		}
	}
	if len(seqs) == 0 || seqs[len(seqs)-1] != 40 {
		t.Fatalf("got seqs %v; want a run ending at 40", seqs)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("got seqs %v; want consecutive", seqs)
		}
	}
	if len(seqs) >= 40 {
		t.Errorf("got all %d entries kept; want the oldest rotated away", len(seqs))
	}
}

func readLines(t *testing.T, path string) []*tokenward.AuditEntry {
	t.Helper()
	var out []*tokenward.AuditEntry
	for e, err := range readJSONLines[tokenward.AuditEntry](path) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// receiver is a webhook endpoint on loopback that answers 503 while down,
// and records the seqs of verified batches it accepts.
type receiver struct {
	t        *testing.T
	secret   []byte
	mu       sync.Mutex
	down     bool
	failN    int // answer failCode (default 503) to this many more requests
	failCode int
	tries    int
	seqs     []int64
	srv      *httptest.Server
}

func newReceiver(t *testing.T, secret []byte) *receiver {
	r := &receiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if r.down || r.failN > 0 {
		r.failN--
		w.WriteHeader(cmp.Or(r.failCode, http.StatusServiceUnavailable))
		return
	}
	// The one layout every webhook has: t and v1 in the signature header.
	if sig := req.Header.Get(webhook.SignatureHeader); !strings.HasPrefix(sig, "t=") || !strings.Contains(sig, ",v1=") {
		r.t.Errorf("got %s %q; want t=<unix>,v1=<hex>", webhook.SignatureHeader, sig)
	}
	if err := webhook.Verify(r.secret, req.Header, body, time.Now(), time.Minute); err != nil {
		r.t.Errorf("got %v; want a valid signature", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var batch struct{ Entries []*tokenward.AuditEntry }
	if err := json.Unmarshal(body, &batch); err != nil {
		r.t.Errorf("got %v decoding a batch; want JSON", err)
	}
	for _, e := range batch.Entries {
		r.seqs = append(r.seqs, e.Seq)
	}
}

// newDownReceiver returns the URL of a receiver that is down: it refuses
// every request (503). Restart tests send the first run there instead of
// setting receiver.down and clearing it later: Close abandons the request in
// flight, the server may still run its handler after the flag is cleared
// and accept the batch, and a sink that cannot know its batch arrived sends
// it again after the restart (at least once, docs/audit.md).
func newDownReceiver(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (r *receiver) got() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.seqs...)
}

func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

var testWebhookSecret = []byte("whsec-0123456789abcdef-SECRET")

func newTestWebhook(t *testing.T, url, dir string, sleep func(context.Context, time.Duration) error, logs io.Writer) *WebhookSink {
	t.Helper()
	s := NewWebhookSink(url, testWebhookSecret, dir)
	s.MaxBatch, s.Delivery.Sleep = 7, sleep
	if logs != nil {
		s.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	return s
}

func flushCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestWebhookOutage: the receiver answers 503 for a while, then 200; every
// entry arrives exactly once, in order, and the retry delays grow.
func TestWebhookOutage(t *testing.T) {
	r := newReceiver(t, testWebhookSecret)
	r.failN = 6
	var mu sync.Mutex
	var delays []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
		return ctx.Err()
	}
	var logs bytes.Buffer
	s := newTestWebhook(t, r.srv.URL, t.TempDir(), sleep, &syncWriter{w: &logs})
	b := openBroker(t, mustFileStore(t, ""), s)
	for i := 1; i <= 50; i++ {
		if err := b.Record(context.Background(), newEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Close drains the broker's queue into the sink, then flushes it.
	if err := b.Close(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats().Sinks[0]; st.Written != 50 || st.Dropped != 0 {
		t.Errorf("got %+v; want 50 written, none dropped", st)
	}
	if got, want := r.got(), seqRange(1, 50); !equalInts(got, want) {
		t.Errorf("got seqs %v; want %v", got, want)
	}
	mu.Lock()
	if len(delays) != 6 || delays[0] != time.Second || delays[5] != 32*time.Second {
		t.Errorf("got delays %v; want 6 doubling from 1s", delays)
	}
	mu.Unlock()
	if strings.Contains(logs.String(), string(testWebhookSecret)) || strings.Contains(logs.String(), "payments/prod") {
		t.Errorf("got logs with a secret or entry value: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "webhook delivery failed") {
		t.Errorf("got logs %s; want the failures logged", logs.String())
	}
}

// TestWebhookRejectedIsRetried: a batch the receiver refuses (a 4xx, say
// while its secret is being fixed) is sent again, never skipped.
func TestWebhookRejectedIsRetried(t *testing.T) {
	r := newReceiver(t, testWebhookSecret)
	r.failN, r.failCode = 2, http.StatusUnauthorized
	s := newTestWebhook(t, r.srv.URL, t.TempDir(), noSleep, nil)
	defer s.Close()
	entries, _ := buildChain(t, 3, nil, 0)
	for _, e := range entries {
		if err := s.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.got(), seqRange(1, 3); !equalInts(got, want) {
		t.Errorf("got seqs %v; want %v", got, want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tries < 3 {
		t.Errorf("got %d requests; want the two refusals and a delivery", r.tries)
	}
}

// TestWebhookRestart: entries buffered while the receiver is down survive a
// restart of the process and are delivered, once each, in order.
func TestWebhookRestart(t *testing.T) {
	dir := t.TempDir()
	r := newReceiver(t, testWebhookSecret)
	// While down, retries wait until the sink is closed.
	waitForClose := func(ctx context.Context, d time.Duration) error { <-ctx.Done(); return ctx.Err() }
	s1 := newTestWebhook(t, newDownReceiver(t), dir, waitForClose, nil)
	entries, _ := buildChain(t, 30, nil, 0)
	ctx := context.Background()
	for _, e := range entries[:20] {
		if err := s1.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newTestWebhook(t, r.srv.URL, dir, noSleep, nil)
	if err := s2.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.got(), seqRange(1, 20); !equalInts(got, want) {
		t.Fatalf("got seqs %v after restart; want %v", got, want)
	}
	for _, e := range entries[20:] {
		if err := s2.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s2.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.got(), seqRange(1, 30); !equalInts(got, want) {
		t.Errorf("got seqs %v; want %v", got, want)
	}
	// A third start finds nothing left to send.
	s3 := newTestWebhook(t, r.srv.URL, dir, noSleep, nil)
	defer s3.Close()
	if p := s3.Pending(); p != 0 {
		t.Errorf("got %d bytes pending; want 0", p)
	}
}

// TestWebhookCloseAbandonsRequest: Close does not wait for the request in
// flight. The receiver may still take that batch, but the sink cannot know,
// so the batch stays buffered and is sent again after the restart: a
// duplicate rather than a loss (at least once).
func TestWebhookCloseAbandonsRequest(t *testing.T) {
	r := newReceiver(t, testWebhookSecret)
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		close(arrived)
		<-release // until the sink has given up on this request
		req.Body = io.NopCloser(bytes.NewReader(body))
		r.serve(w, req)
	}))
	defer slow.Close()
	dir := t.TempDir()
	s1 := newTestWebhook(t, slow.URL, dir, noSleep, nil)
	entries, _ := buildChain(t, 1, nil, 0)
	if err := s1.Write(context.Background(), entries[0]); err != nil {
		t.Fatal(err)
	}
	<-arrived
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	slow.Close() // waits for the handler
	if got, want := r.got(), seqRange(1, 1); !equalInts(got, want) {
		t.Fatalf("got seqs %v from the abandoned request; want %v", got, want)
	}
	s2 := newTestWebhook(t, r.srv.URL, dir, noSleep, nil)
	defer s2.Close()
	if err := s2.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.got(), []int64{1, 1}; !equalInts(got, want) {
		t.Errorf("got seqs %v after the restart; want %v (the abandoned batch again)", got, want)
	}
}

// TestWebhookBufferBound: past MaxBufferBytes of undelivered entries, new
// ones are dropped, counted and logged; what was buffered still arrives.
func TestWebhookBufferBound(t *testing.T) {
	r := newReceiver(t, testWebhookSecret)
	r.down = true
	release := make(chan struct{})
	sleep := func(ctx context.Context, d time.Duration) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var logs syncWriter
	s := NewWebhookSink(r.srv.URL, testWebhookSecret, t.TempDir())
	s.MaxBufferBytes, s.Delivery.Sleep, s.Logger = 5000, sleep, slog.New(slog.NewJSONHandler(&logs, nil))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entries, _ := buildChain(t, 40, nil, 0)
	for _, e := range entries {
		if err := s.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if s.Pending() > 5000 {
		t.Errorf("got %d bytes pending; want at most 5000", s.Pending())
	}
	dropped := s.Dropped()
	if dropped == 0 || !strings.Contains(logs.String(), "webhook buffer full; entry dropped") {
		t.Fatalf("got %d dropped, logs %s; want drops counted and logged", dropped, logs.String())
	}
	r.mu.Lock()
	r.down = false
	r.mu.Unlock()
	close(release)
	if err := s.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.got(), seqRange(1, 40-dropped); !equalInts(got, want) {
		t.Errorf("got seqs %v; want %v", got, want)
	}
}

func TestWebhookOpenValidates(t *testing.T) {
	tests := []struct {
		name, url string
		secret    []byte
	}{
		{"relative url", "/hook", testWebhookSecret},
		{"ftp url", "ftp://example.com/hook", testWebhookSecret},
		{"short secret", "https://example.com/hook", []byte("short")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewWebhookSink(tt.url, tt.secret, t.TempDir())
			err := s.Open()
			if tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Fatalf("got %v; want EINVALID", err)
			}
			if strings.Contains(err.Error(), string(tt.secret)) {
				t.Errorf("got error %q holding the secret", err)
			}
		})
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w != nil {
		return w.w.Write(p)
	}
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestSyslogSink(t *testing.T) {
	e := newEntry(3) // denied: severity warning
	e.Seq, e.Time, e.PrevHash = 9, testEpoch, GenesisHash
	e.Hash = HashEntry(e)
	wantPrefix := "<108>1 2026-03-01T12:00:00.000000Z testhost tokenward "

	check := func(t *testing.T, msg string) {
		t.Helper()
		if !strings.HasPrefix(msg, wantPrefix) {
			t.Fatalf("got %q; want prefix %q", msg, wantPrefix)
		}
		_, js, ok := strings.Cut(msg, " audit - ")
		if !ok {
			t.Fatalf("got %q; want MSGID audit and no structured data", msg)
		}
		var got tokenward.AuditEntry
		if err := json.Unmarshal([]byte(js), &got); err != nil || got.Hash != e.Hash {
			t.Fatalf("got %v, hash %s; want the entry's JSON", err, got.Hash)
		}
	}

	t.Run("udp", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		s := mustSyslog(t, "udp", pc.LocalAddr().String())
		if err := s.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65536)
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		check(t, string(buf[:n]))
	})
	t.Run("tcp octet counting", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan []string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			var msgs []string
			for range 2 {
				lenStr, err := br.ReadString(' ')
				if err != nil {
					break
				}
				n, _ := strconv.Atoi(strings.TrimSpace(lenStr))
				m := make([]byte, n)
				if _, err := io.ReadFull(br, m); err != nil {
					break
				}
				msgs = append(msgs, string(m))
			}
			got <- msgs
		}()
		s := mustSyslog(t, "tcp", ln.Addr().String())
		for range 2 {
			if err := s.Write(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		msgs := <-got
		if len(msgs) != 2 {
			t.Fatalf("got %d framed messages; want 2", len(msgs))
		}
		for _, m := range msgs {
			check(t, m)
		}
	})
	t.Run("unixgram", func(t *testing.T) {
		dir, err := os.MkdirTemp("", "sl")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "log")
		pc, err := net.ListenPacket("unixgram", path)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		s := mustSyslog(t, "unixgram", path)
		if err := s.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65536)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		check(t, string(buf[:n]))
	})
	t.Run("receiver gone", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s := mustSyslog(t, "tcp", addr)
		if err := s.Write(context.Background(), e); err == nil {
			t.Error("got nil; want a dial error for the broker to retry")
		}
	})
	if _, err := NewSyslogSink("http", "x"); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("got %v; want EINVALID for an unknown network", err)
	}
}

func mustSyslog(t *testing.T, network, addr string) *SyslogSink {
	t.Helper()
	s, err := NewSyslogSink(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Hostname = "testhost"
	t.Cleanup(func() { s.Close() })
	return s
}

// TestWebhookCompaction: with a small buffer and small batches, delivered
// space is reclaimed while entries are still pending, across a restart.
func TestWebhookCompaction(t *testing.T) {
	dir := t.TempDir()
	r := newReceiver(t, testWebhookSecret)
	r.failN = 1 // hold the first batch back until every entry is buffered
	release := make(chan struct{})
	sleep := func(ctx context.Context, d time.Duration) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	open := func() *WebhookSink {
		s := NewWebhookSink(r.srv.URL, testWebhookSecret, dir)
		s.MaxBufferBytes, s.MaxBatch, s.Delivery.Sleep = 8000, 2, sleep
		if err := s.Open(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	entries, _ := buildChain(t, 24, nil, 0)
	for _, e := range entries[:12] {
		if err := s.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if s.Dropped() != 0 {
		t.Fatalf("got %d dropped; want 0 (test setup: buffer too small)", s.Dropped())
	}
	close(release)
	if err := s.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	for _, e := range entries[12:] {
		if err := s.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.got(), seqRange(1, 24); !equalInts(got, want) {
		t.Errorf("got seqs %v; want %v", got, want)
	}
}

// TestNoSecretsInSinks runs every sink and then greps every file written
// and every byte received for the webhook secret and the signing key.
func TestNoSecretsInSinks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "audit.key")) // kept outside dir
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, testWebhookSecret)
	wh := newTestWebhook(t, r.srv.URL, filepath.Join(dir, "webhook"), noSleep, nil)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var stdout syncWriter
	var logs syncWriter
	store := mustFileStore(t, filepath.Join(dir, "store"))
	b := NewBroker(store, signer, NewFileSink(filepath.Join(dir, "audit.log")), NewWriterSink("stdout", &stdout), wh, mustSyslog(t, "udp", pc.LocalAddr().String()))
	b.CheckpointEvery = 2
	b.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if err := b.Record(ctx, newEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"webhook secret":   testWebhookSecret,
		"private key seed": key.Seed(),
		"private key hex":  []byte(hex.EncodeToString(key.Seed())),
	}
	haystacks := map[string][]byte{"stdout": []byte(stdout.String()), "logs": []byte(logs.String())}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			haystacks[p] = b
		}
		return nil
	})
	if len(haystacks) < 5 {
		t.Fatalf("got %d outputs to search; want the store, sink files and webhook buffer too", len(haystacks))
	}
	for hn, h := range haystacks {
		for sn, s := range secrets {
			if bytes.Contains(h, s) {
				t.Errorf("got the %s in %s; want it nowhere", sn, hn)
			}
		}
	}
	if got := r.got(); len(got) != 5 {
		t.Errorf("got %d entries at the webhook; want 5", len(got))
	}
}

// TestWebhookErrorsHideURL: a webhook URL may itself be a secret, so a
// delivery failure is logged without it.
func TestWebhookErrorsHideURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every delivery fails to connect
	var logs syncWriter
	failed := make(chan struct{})
	var once sync.Once
	sleep := func(ctx context.Context, d time.Duration) error {
		once.Do(func() { close(failed) })
		<-ctx.Done()
		return ctx.Err()
	}
	s := newTestWebhook(t, "http://"+addr+"/hooks/T000/B000/XsecretPATHx?token=QsecretQ", t.TempDir(), sleep, &logs)
	entries, _ := buildChain(t, 1, nil, 0)
	if err := s.Write(context.Background(), entries[0]); err != nil {
		t.Fatal(err)
	}
	<-failed
	s.Close()
	if !strings.Contains(logs.String(), "webhook delivery failed") {
		t.Fatalf("got logs %s; want the failure logged", logs.String())
	}
	for _, secret := range []string{"XsecretPATHx", "QsecretQ"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("got logs holding %q: %s", secret, logs.String())
		}
	}
}

// TestBrokerRestartWithWebhookDown: the server shuts down while the
// receiver is down (Close gives up when its context ends), starts again on
// the same data directory, and the receiver, once back, gets every entry of
// both runs exactly once, in order.
func TestBrokerRestartWithWebhookDown(t *testing.T) {
	dataDir := t.TempDir()
	r := newReceiver(t, testWebhookSecret)
	waitForClose := func(ctx context.Context, d time.Duration) error { <-ctx.Done(); return ctx.Err() }
	run := func(url string, from, to int, sleep func(context.Context, time.Duration) error, closeCtx context.Context) {
		store := mustFileStore(t, filepath.Join(dataDir, "store"))
		wh := newTestWebhook(t, url, filepath.Join(dataDir, "webhook"), sleep, nil)
		b := openBroker(t, store, wh)
		for i := from; i <= to; i++ {
			if err := b.Record(context.Background(), newEntry(i)); err != nil {
				t.Fatal(err)
			}
		}
		b.Close(closeCtx)
		store.Close()
	}
	// First run: the receiver is down; give Close a context that is already
	// done, as when the shutdown grace period ran out.
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	run(newDownReceiver(t), 1, 10, waitForClose, expired)
	run(r.srv.URL, 11, 15, noSleep, flushCtx(t))
	if got, want := r.got(), seqRange(1, 15); !equalInts(got, want) {
		t.Errorf("got seqs %v; want %v", got, want)
	}
}

// TestWebhookOffsetNotSavedLosesNothing: when the offset of a buffer just
// delivered in full cannot be saved (a full disk), the buffer is not
// emptied under the saved offset: entries buffered afterwards would sit
// below it and be skipped at the next start. At least once: they come
// again, never not at all.
func TestWebhookOffsetNotSavedLosesNothing(t *testing.T) {
	dir := t.TempDir()
	waitForClose := func(ctx context.Context, d time.Duration) error { <-ctx.Done(); return ctx.Err() }
	entries, _ := buildChain(t, 20, nil, 0)
	ctx := context.Background()
	// Entries 1..10 wait in the buffer of a first run.
	s0 := newTestWebhook(t, newDownReceiver(t), dir, waitForClose, nil)
	for _, e := range entries[:10] {
		if err := s0.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s0.Close(); err != nil {
		t.Fatal(err)
	}
	// The next run delivers them in two batches (7, then 3). Before the
	// second is answered, the offset file can no longer be written.
	second, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	requests := 0
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.ReadAll(req.Body)
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		switch {
		case n == 2:
			close(second)
			<-release
		case n > 2:
			w.WriteHeader(http.StatusServiceUnavailable) // down from now on
		}
	}))
	defer hold.Close()
	s1 := newTestWebhook(t, hold.URL, dir, waitForClose, nil)
	<-second
	if err := os.Mkdir(filepath.Join(dir, webhookOffsetFile+".tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := s1.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(filepath.Join(dir, webhookOffsetFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, webhookQueueFile)); err != nil || fi.Size() == 0 && string(saved) != "0" {
		t.Fatalf("got the buffer emptied (%v) under the saved offset %s; want it kept until the offset 0 is saved", err, saved)
	}
	// Entries 11..20 are buffered while the receiver is down.
	for _, e := range entries[10:] {
		if err := s1.Write(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, testWebhookSecret)
	s2 := newTestWebhook(t, r.srv.URL, dir, noSleep, nil)
	defer s2.Close()
	if err := s2.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	got := map[int64]bool{}
	for _, seq := range r.got() {
		got[seq] = true
	}
	for seq := int64(11); seq <= 20; seq++ {
		if !got[seq] {
			t.Fatalf("got seqs %v after the restart; want 11..20 among them", r.got())
		}
	}
}

// TestWebhookOffsetMidLine: a saved offset that does not fall where a line
// starts (the buffer changed after it was saved) sends the whole buffer
// again rather than batches cut mid-line, which the receiver refuses
// forever.
func TestWebhookOffsetMidLine(t *testing.T) {
	dir := t.TempDir()
	waitForClose := func(ctx context.Context, d time.Duration) error { <-ctx.Done(); return ctx.Err() }
	entries, _ := buildChain(t, 5, nil, 0)
	s0 := newTestWebhook(t, newDownReceiver(t), dir, waitForClose, nil)
	for _, e := range entries {
		if err := s0.Write(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s0.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, webhookOffsetFile), []byte("10"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, testWebhookSecret)
	s := newTestWebhook(t, r.srv.URL, dir, noSleep, nil)
	defer s.Close()
	if err := s.Flush(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.got(), seqRange(1, 5); !equalInts(got, want) {
		t.Errorf("got seqs %v; want %v", got, want)
	}
}
