package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/egress"
)

// receiver is a real HTTP server on loopback: it answers the scripted
// statuses (then 200 with answer), and records what it got.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	answer   []byte
	requests []*http.Request
	bodies   [][]byte
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	r := &receiver{script: script, answer: []byte(`{"ok":true}`)}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	r.bodies = append(r.bodies, body)
	if len(r.script) > 0 {
		code := r.script[0]
		r.script = r.script[1:]
		if code/100 == 3 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		w.Write([]byte(`{"value":"leaky-answer"}`))
		return
	}
	w.Write(r.answer)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func (r *receiver) got() ([]*http.Request, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.requests...), append([][]byte(nil), r.bodies...)
}

// testDeliverer records its waits instead of sleeping, and logs to logs.
func testDeliverer(logs io.Writer) (*Deliverer, func() []time.Duration) {
	var mu sync.Mutex
	var waits []time.Duration
	d := &Deliverer{
		Now: func() time.Time { return t0 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return ctx.Err()
		},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
	return d, func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), waits...)
	}
}

func TestDeliverRetries(t *testing.T) {
	s := time.Second
	tests := []struct {
		name        string
		script      []int
		maxAttempts int
		wantErr     string
		wantTries   int
		wantWaits   []time.Duration
	}{
		{"first try", nil, 0, "", 1, nil},
		{"two 503 then ok", []int{503, 503}, 0, "", 3, []time.Duration{s, 2 * s}},
		{"429 then ok", []int{429}, 0, "", 2, []time.Duration{s}},
		{"408 then ok", []int{408}, 0, "", 2, []time.Duration{s}},
		{"400 is not retried", []int{400}, 0, "endpoint answered 400", 1, nil},
		{"401 is not retried", []int{401}, 0, "endpoint answered 401", 1, nil},
		{"404 is not retried", []int{404}, 0, "endpoint answered 404", 1, nil},
		{"a redirect is not followed", []int{307}, 0, "endpoint answered 307", 1, nil},
		{"always 500", []int{500, 500, 500, 500, 500, 500}, 0, "giving up after 5 attempts: endpoint answered 500", 5, []time.Duration{s, 2 * s, 4 * s, 8 * s}},
		{"three attempts", []int{502, 502, 502}, 3, "giving up after 3 attempts: endpoint answered 502", 3, []time.Duration{s, 2 * s}},
		{"backoff stops at the maximum", []int{500, 500, 500, 500, 500, 500, 500, 500}, 9, "", 9, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s}},
		{"forever retries a 4xx too", []int{400, 403, 500}, Forever, "", 4, []time.Duration{s, 2 * s, 4 * s}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, tc.script...)
			d, waits := testDeliverer(io.Discard)
			d.MaxAttempts = tc.maxAttempts
			body := []byte(`{"a":1}`)
			answer, err := d.Deliver(context.Background(), r.URL+"/hook", testSecret, body)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Errorf("got error %v; want %q", err, tc.wantErr)
			}
			if err == nil && string(answer) != `{"ok":true}` {
				t.Errorf("got answer %q; want the receiver's", answer)
			}
			if n := r.count(); n != tc.wantTries {
				t.Errorf("got %d attempts; want %d", n, tc.wantTries)
			}
			if got := waits(); !equalDurations(got, tc.wantWaits) {
				t.Errorf("got waits %v; want %v", got, tc.wantWaits)
			}
			reqs, bodies := r.got()
			for i, req := range reqs {
				if req.URL.Path != "/hook" || req.Method != http.MethodPost || !bytes.Equal(bodies[i], body) {
					t.Errorf("request %d: got %s %s %q; want POST /hook with the body", i, req.Method, req.URL.Path, bodies[i])
				}
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDeliverHeaders(t *testing.T) {
	body := []byte(`{"type":"x"}`)
	tests := []struct {
		name    string
		secret  []byte
		wantSig string
	}{
		{"signed", testSecret, Sign(testSecret, t0, body)},
		{"unsigned", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t)
			d, _ := testDeliverer(io.Discard)
			if _, err := d.Deliver(context.Background(), r.URL, tc.secret, body); err != nil {
				t.Fatal(err)
			}
			reqs, bodies := r.got()
			h := reqs[0].Header
			if got := h.Get(SignatureHeader); got != tc.wantSig {
				t.Errorf("got %s %q; want %q", SignatureHeader, got, tc.wantSig)
			}
			if got := h.Get("Content-Type"); got != "application/json" {
				t.Errorf("got Content-Type %q; want application/json", got)
			}
			if tc.secret != nil {
				if err := Verify(tc.secret, h, bodies[0], t0, time.Minute); err != nil {
					t.Errorf("Verify: got %v; want nil", err)
				}
			}
		})
	}
}

// TestDeliverAnswerBound: a 2xx answer is returned up to MaxAnswer+1 bytes.
func TestDeliverAnswerBound(t *testing.T) {
	r := newReceiver(t)
	r.answer = bytes.Repeat([]byte("a"), 2*MaxAnswer)
	d, _ := testDeliverer(io.Discard)
	answer, err := d.Deliver(context.Background(), r.URL, nil, []byte(`{}`))
	if err != nil || len(answer) != MaxAnswer+1 {
		t.Fatalf("got %d bytes, %v; want %d bytes", len(answer), err, MaxAnswer+1)
	}
}

// TestDeliverConnectionError: nothing listens at first; the retry after
// the first wait finds the receiver up.
func TestDeliverConnectionError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	got := make(chan []byte, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	})}
	t.Cleanup(func() { srv.Close() })
	var logs bytes.Buffer
	d, _ := testDeliverer(&logs)
	sleeps := 0
	d.Sleep = func(ctx context.Context, _ time.Duration) error {
		sleeps++
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		go srv.Serve(ln)
		return nil
	}
	if _, err := d.Deliver(context.Background(), "http://"+addr+"/hook", testSecret, []byte(`{"n":1}`)); err != nil {
		t.Fatalf("got %v; want the second attempt to succeed", err)
	}
	if b := <-got; string(b) != `{"n":1}` || sleeps != 1 {
		t.Errorf("got body %q after %d waits; want it delivered on the second attempt", b, sleeps)
	}
	if !strings.Contains(logs.String(), "webhook delivery failed") || !strings.Contains(logs.String(), "attempt=1") {
		t.Errorf("got logs %q; want the first failure logged", logs.String())
	}
}

// TestDeliverNeverLeaks: a receiver that is down, a secret in the URL's
// path and query, a value in the body: none reaches the error or the logs,
// which name the host.
func TestDeliverNeverLeaks(t *testing.T) {
	r := newReceiver(t)
	r.Close()
	var logs bytes.Buffer
	d, _ := testDeliverer(&logs)
	_, err := d.Deliver(context.Background(), r.URL+"/services/XsecretPATHx?token=QsecretQ", testSecret, []byte(`{"value":"sk_live_VALUE"}`))
	if err == nil {
		t.Fatal("got no error from a down receiver; want one")
	}
	out := logs.String() + err.Error()
	for _, secret := range []string{"XsecretPATHx", "QsecretQ", string(testSecret), "sk_live_VALUE"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs or error hold %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(logs.String(), strings.TrimPrefix(r.URL, "http://")) {
		t.Errorf("got logs %q; want the host named", logs.String())
	}
	r2 := newReceiver(t, 400)
	if _, err := d.Deliver(context.Background(), r2.URL, testSecret, []byte(`{}`)); err == nil || strings.Contains(err.Error(), "leaky-answer") {
		t.Errorf("got %v; want an error without the answer", err)
	}
}

// slowServer counts requests, reads each body and then answers nothing
// until the client goes away or the test ends.
func slowServer(t *testing.T, arrived chan<- struct{}) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv
}

// TestDeliverTimeout: each attempt is bounded; a slow receiver is retried.
func TestDeliverTimeout(t *testing.T) {
	arrived := make(chan struct{}, 10)
	srv := slowServer(t, arrived)
	d, waits := testDeliverer(io.Discard)
	d.Timeout, d.MaxAttempts = 100*time.Millisecond, 2
	start := time.Now()
	_, err := d.Deliver(context.Background(), srv.URL, testSecret, []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("got %v; want a timeout", err)
	}
	if len(waits()) != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("got %d waits in %v; want 1 retry, and no waiting for the receiver", len(waits()), time.Since(start))
	}
	for i := range 2 {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d attempts at the receiver; want 2", i)
		}
	}
}

// TestDeliverContextCancel: a cancelled context ends Deliver during an
// attempt and during a wait (the default, jittered, sleep).
func TestDeliverContextCancel(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := slowServer(t, arrived)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	d := &Deliverer{MaxAttempts: Forever}
	if _, err := d.Deliver(ctx, srv.URL, testSecret, []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("during an attempt: got %v; want context.Canceled", err)
	}

	r := newReceiver(t, 503)
	ctx, cancel = context.WithCancel(context.Background())
	d = &Deliverer{Backoff: time.Hour}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := d.Deliver(ctx, r.URL, testSecret, []byte(`{}`))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "endpoint answered 503") {
		t.Errorf("during a wait: got %v; want context.Canceled and the last error", err)
	}
	if el := time.Since(start); el > 10*time.Second || r.count() != 1 {
		t.Errorf("during a wait: got %d attempts in %v; want 1, and a prompt return", r.count(), el)
	}
}

// TestDeliverRefusesMetadata: the default client will not connect to
// link-local or metadata addresses, and does not retry the refusal.
func TestDeliverRefusesMetadata(t *testing.T) {
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "https://[fe80::1]/hook", "http://[fd00:ec2::254]/"} {
		t.Run(u, func(t *testing.T) {
			d, waits := testDeliverer(io.Discard)
			_, err := d.Deliver(context.Background(), u, testSecret, []byte(`{}`))
			if !errors.Is(err, egress.ErrBlocked) {
				t.Fatalf("got %v; want egress.ErrBlocked", err)
			}
			if n := len(waits()); n != 0 {
				t.Errorf("got %d retries; want none", n)
			}
		})
	}
}

func TestDeliverRefusesBadURL(t *testing.T) {
	for _, u := range []string{"/relative", "ftp://example.com/x", "http://", "::"} {
		d, _ := testDeliverer(io.Discard)
		if _, err := d.Deliver(context.Background(), u, nil, nil); err == nil || CheckURL(u) == nil {
			t.Errorf("%q: got %v; want EINVALID", u, err)
		}
	}
}

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		d        time.Duration
		r        float64
		min, max time.Duration
	}{
		{time.Second, 0, 500 * time.Millisecond, 500 * time.Millisecond},
		{time.Second, 0.5, 750 * time.Millisecond, 750 * time.Millisecond},
		{time.Second, 0.999999, 999 * time.Millisecond, time.Second - 1},
		{3, 0.99, 1, 2},
	} {
		if got := jitter(tc.d, tc.r); got < tc.min || got > tc.max {
			t.Errorf("jitter(%v, %v): got %v; want in [%v, %v]", tc.d, tc.r, got, tc.min, tc.max)
		}
	}
}
