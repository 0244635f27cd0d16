package loadgen

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Builder makes the next request of one operation for worker (0-based),
// its seq-th request of any kind. It is called from many goroutines.
type Builder func(worker int, seq uint64) (*http.Request, error)

// Config says what Run sends, how often and for how long.
type Config struct {
	Mix         Mix
	Concurrency int
	// Duration bounds the run when Requests is 0: no request starts after
	// it, and those in flight finish.
	Duration time.Duration
	// Requests, when positive, is the number of requests to send in all.
	Requests int64
	// Build holds a Builder for every operation of Mix.
	Build map[Op]Builder
	// Client sends the requests; nil means NewHTTPClient(Concurrency, nil).
	Client *http.Client
}

// NewHTTPClient returns a client tuned for load on few hosts: keep-alives
// with up to concurrency idle connections per host (the default of 2 would
// close and redial most connections under load) and at most concurrency
// open (a request waits for a connection to come back rather than dialling
// one more), no proxy, no transparent gzip, HTTP/1.1, a 30 s bound on each
// request. tlsConfig (nil: the defaults) is for https servers whose
// certificate a private CA signed.
func NewHTTPClient(concurrency int, tlsConfig *tls.Config) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0, // no limit overall
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     concurrency,
			IdleConnTimeout:     90 * time.Second,
			TLSClientConfig:     tlsConfig,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// Stats is what Run measured for one operation.
type Stats struct {
	// Latency holds the time from sending to the last byte of each
	// successful (2xx) answer.
	Latency Histogram
	// Requests counts every request sent, Errors those that failed: no
	// answer, or an answer that was not 2xx.
	Requests, Errors atomic.Int64

	mu      sync.Mutex
	samples map[string]int64
}

// maxSamples bounds the distinct error messages kept per operation.
const maxSamples = 5

func (s *Stats) fail(msg string) {
	s.Errors.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == nil {
		s.samples = map[string]int64{}
	}
	if _, ok := s.samples[msg]; ok || len(s.samples) < maxSamples {
		s.samples[msg]++
	}
}

// ErrorSample is one kind of failure and how often it happened.
type ErrorSample struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

// ErrorSamples returns up to five distinct failures, most frequent first.
func (s *Stats) ErrorSamples() []ErrorSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ErrorSample, 0, len(s.samples))
	for m, n := range s.samples {
		out = append(out, ErrorSample{m, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Message < out[j].Message
	})
	return out
}

// Result is what one Run measured.
type Result struct {
	Elapsed time.Duration
	Ops     map[Op]*Stats
}

// Merge returns the measurements of a and b together, as one run of their
// combined wall time (for a baseline measured in two halves).
func Merge(a, b *Result) *Result {
	out := &Result{Elapsed: a.Elapsed + b.Elapsed, Ops: map[Op]*Stats{}}
	for _, r := range []*Result{a, b} {
		for op, st := range r.Ops {
			if out.Ops[op] == nil {
				out.Ops[op] = &Stats{}
			}
			out.Ops[op].add(st)
		}
	}
	return out
}

// Run sends the mix from cfg.Concurrency workers until the duration is up
// or the requests are sent, and waits for the last answers. Each worker
// cycles through the mix's schedule from its own offset, so the proportions
// hold for every worker and the workers do not move in step. Canceling ctx
// stops the run and returns ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Concurrency < 1 {
		return nil, errors.New("concurrency must be at least 1")
	}
	if cfg.Requests <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("give a duration or a number of requests")
	}
	res := &Result{Ops: map[Op]*Stats{}}
	for _, w := range cfg.Mix {
		if cfg.Build[w.Op] == nil {
			return nil, fmt.Errorf("operation %s: %w", w.Op, ErrNotAvailable)
		}
		res.Ops[w.Op] = &Stats{}
	}
	hc := cfg.Client
	if hc == nil {
		hc = NewHTTPClient(cfg.Concurrency, nil)
	}
	sched := cfg.Mix.schedule()
	var remaining atomic.Int64
	remaining.Store(cfg.Requests)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			offset := w * len(sched) / cfg.Concurrency
			for seq := uint64(0); ctx.Err() == nil; seq++ {
				if cfg.Requests > 0 {
					if remaining.Add(-1) < 0 {
						return
					}
				} else if !time.Now().Before(end) {
					return
				}
				op := sched[(offset+int(seq%uint64(len(sched))))%len(sched)] // #nosec G115 -- the modulo is below len(sched)
				send(ctx, hc, cfg.Build[op], res.Ops[op], w, seq)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// send makes, sends and times one request, reading its answer to the end
// so the connection is reused.
func send(ctx context.Context, hc *http.Client, build Builder, st *Stats, worker int, seq uint64) {
	st.Requests.Add(1)
	req, err := build(worker, seq)
	if err != nil {
		st.fail("building the request: " + err.Error())
		return
	}
	req = req.WithContext(ctx)
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			st.Requests.Add(-1) // stopped by the caller, not a failure
			return
		}
		st.fail(err.Error())
		return
	}
	var body []byte
	if resp.StatusCode/100 == 2 {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 4096))
	}
	resp.Body.Close()
	d := time.Since(t0)
	switch {
	case err != nil && ctx.Err() != nil:
		st.Requests.Add(-1)
	case err != nil:
		st.fail("reading the answer: " + err.Error())
	case resp.StatusCode/100 != 2:
		st.fail(statusMessage(resp.StatusCode, body))
	default:
		st.Latency.Record(d)
	}
}

// statusMessage names a failed answer by its status and the API's error
// code. The error's message is left out: it is the server's to word, and
// the code is what a comparison between runs needs.
func statusMessage(status int, body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	msg := fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		msg += " (" + printableCode(e.Error.Code) + ")"
	}
	return msg
}

// printableCode keeps an error code to the letters codes are made of.
func printableCode(s string) string {
	b := make([]byte, 0, min(len(s), 32))
	for i := 0; i < len(s) && len(b) < 32; i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' {
			b = append(b, c)
		}
	}
	return string(b)
}
