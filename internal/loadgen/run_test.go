package loadgen

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testServer is a real HTTP server on loopback: /ok answers 200, /deny
// answers 403 with an API error whose message holds a canary. It counts
// requests and new connections.
type testServer struct {
	url           string
	requests      atomic.Int64
	conns         atomic.Int64
	deniedMessage string
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{deniedMessage: "canary-7c1e-value"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		ts.requests.Add(1)
		w.Write([]byte(strings.Repeat("x", 100)))
	})
	mux.HandleFunc("/deny", func(w http.ResponseWriter, r *http.Request) {
		ts.requests.Add(1)
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error":{"code":"EFORBIDDEN","message":"` + ts.deniedMessage + `"}}`))
	})
	srv := &http.Server{Handler: mux, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ts.conns.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ts.url = "http://" + ln.Addr().String()
	return ts
}

func get(url string) Builder {
	return func(int, uint64) (*http.Request, error) { return http.NewRequest("GET", url, nil) }
}

func mustMix(t *testing.T, s string) Mix {
	t.Helper()
	m, err := ParseMix(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRunCountsExactly: with one worker and a request count, every op is
// sent exactly as often as its weight says, successes are timed, failures
// counted with their status and code but not the server's message.
func TestRunCountsExactly(t *testing.T) {
	ts := startTestServer(t)
	res, err := Run(context.Background(), Config{
		Mix: mustMix(t, "read=3,write=1"), Concurrency: 1, Requests: 100,
		Build: map[Op]Builder{OpRead: get(ts.url + "/ok"), OpWrite: get(ts.url + "/deny")},
	})
	if err != nil {
		t.Fatal(err)
	}
	read, write := res.Ops[OpRead], res.Ops[OpWrite]
	if got := [4]int64{read.Requests.Load(), read.Errors.Load(), write.Requests.Load(), write.Errors.Load()}; got != [4]int64{75, 0, 25, 25} {
		t.Errorf("read requests, errors, write requests, errors: got %v; want [75 0 25 25]", got)
	}
	if got := read.Latency.Count(); got != 75 {
		t.Errorf("read latencies: got %d; want 75", got)
	}
	if got := write.Latency.Count(); got != 0 {
		t.Errorf("failed writes timed: got %d; want 0", got)
	}
	want := []ErrorSample{{"HTTP 403 Forbidden (EFORBIDDEN)", 25}}
	if got := write.ErrorSamples(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("write error samples: got %v; want %v", got, want)
	}
	if got := ts.requests.Load(); got != 100 {
		t.Errorf("server saw %d requests; want 100", got)
	}
	for _, s := range write.ErrorSamples() {
		if strings.Contains(s.Message, ts.deniedMessage) {
			t.Errorf("error sample repeats the server's message: %q", s.Message)
		}
	}
}

// TestRunReusesConnections: N workers keep about N connections open,
// whatever the number of requests, so the load measures requests rather
// than TCP handshakes. With net/http's defaults (2 idle connections per
// host) 32 workers open 170-200 connections for 2000 requests here; tuned,
// 32. The bound allows twice that: net/http drops a connection instead of
// reusing it when its write loop has not reported the request written
// within 50 ms, which a CPU-starved machine (or -race) can cause.
func TestRunReusesConnections(t *testing.T) {
	ts := startTestServer(t)
	const workers = 32
	res, err := Run(context.Background(), Config{
		Mix: mustMix(t, "read=1"), Concurrency: workers, Requests: 2000,
		Build: map[Op]Builder{OpRead: get(ts.url + "/ok")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Ops[OpRead].Requests.Load(); got != 2000 {
		t.Errorf("requests: got %d; want 2000", got)
	}
	if got := ts.requests.Load(); got != 2000 {
		t.Errorf("server saw %d requests; want 2000", got)
	}
	if got := ts.conns.Load(); got > 2*workers {
		t.Errorf("connections: got %d; want at most %d", got, 2*workers)
	}
}

func TestRunDuration(t *testing.T) {
	ts := startTestServer(t)
	const d = 50 * time.Millisecond
	res, err := Run(context.Background(), Config{
		Mix: mustMix(t, "read=1"), Concurrency: 2, Duration: d,
		Build: map[Op]Builder{OpRead: get(ts.url + "/ok")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Elapsed < d || res.Ops[OpRead].Requests.Load() == 0 {
		t.Errorf("got %v and %d requests; want at least %v and some requests", res.Elapsed, res.Ops[OpRead].Requests.Load(), d)
	}
	if got, want := res.Ops[OpRead].Requests.Load(), ts.requests.Load(); got != want {
		t.Errorf("counted %d requests; the server saw %d", got, want)
	}
}

func TestRunFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	res, err := Run(context.Background(), Config{
		Mix: mustMix(t, "read=1,env=1"), Concurrency: 1, Requests: 4,
		Build: map[Op]Builder{
			OpRead: get(closed),
			OpEnv:  func(int, uint64) (*http.Request, error) { return nil, errors.New("no request today") },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for op, want := range map[Op]string{OpRead: "connection refused", OpEnv: "building the request: no request today"} {
		st := res.Ops[op]
		s := st.ErrorSamples()
		if st.Errors.Load() != 2 || len(s) != 1 || !strings.Contains(s[0].Message, want) {
			t.Errorf("%s: got %d errors, samples %v; want 2 containing %q", op, st.Errors.Load(), s, want)
		}
	}

	_, err = Run(context.Background(), Config{Mix: mustMix(t, "read=1,oidc=1"), Concurrency: 1, Requests: 1, Build: map[Op]Builder{OpRead: get(closed)}})
	if !errors.Is(err, ErrNotAvailable) {
		t.Errorf("an op without a builder: got %v; want ErrNotAvailable", err)
	}
	for _, cfg := range []Config{{Mix: mustMix(t, "read=1"), Requests: 1}, {Mix: mustMix(t, "read=1"), Concurrency: 1}} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("config %+v: got no error", cfg)
		}
	}
}

func TestRunCanceled(t *testing.T) {
	ts := startTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	n := atomic.Int64{}
	_, err := Run(ctx, Config{
		Mix: mustMix(t, "read=1"), Concurrency: 2, Duration: time.Hour,
		Build: map[Op]Builder{OpRead: func(w int, s uint64) (*http.Request, error) {
			if n.Add(1) == 10 {
				cancel()
			}
			return http.NewRequest("GET", ts.url+"/ok", nil)
		}},
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v; want context.Canceled", err)
	}
}

// TestSamplesBounded: at most five distinct failures are kept, every
// failure is counted.
func TestSamplesBounded(t *testing.T) {
	var st Stats
	for i := range 20 {
		st.fail(strings.Repeat("e", i+1))
	}
	st.fail("e")
	s := st.ErrorSamples()
	if st.Errors.Load() != 21 || len(s) != maxSamples || s[0] != (ErrorSample{"e", 2}) {
		t.Errorf("got %d errors, samples %v; want 21 and %d samples, {e 2} first", st.Errors.Load(), s, maxSamples)
	}
}

// TestMerge: two runs merged count as one run of their combined time.
func TestMerge(t *testing.T) {
	a := &Result{Elapsed: time.Second, Ops: map[Op]*Stats{OpRead: {}}}
	b := &Result{Elapsed: 3 * time.Second, Ops: map[Op]*Stats{OpRead: {}, OpEnv: {}}}
	for i, r := range []*Result{a, b} {
		r.Ops[OpRead].Requests.Store(int64(10 * (i + 1)))
		r.Ops[OpRead].Latency.Record(time.Duration(i+1) * time.Millisecond)
		r.Ops[OpRead].fail("HTTP 500 Internal Server Error")
	}
	m := Merge(a, b)
	st := m.Ops[OpRead]
	got := []int64{int64(m.Elapsed / time.Second), st.Requests.Load(), st.Errors.Load(), int64(st.Latency.Count()), int64(st.Latency.Max() / time.Millisecond)}
	if want := []int64{4, 30, 2, 2, 2}; !slices.Equal(got, want) {
		t.Errorf("elapsed s, requests, errors, timed, max ms: got %v; want %v", got, want)
	}
	if s := st.ErrorSamples(); len(s) != 1 || s[0].Count != 2 {
		t.Errorf("samples: got %v; want one with count 2", s)
	}
	if m.Ops[OpEnv] == nil {
		t.Errorf("an op of one side only is missing")
	}
}
