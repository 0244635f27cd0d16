package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// load sends n requests from c goroutines (each with its own keep-alive
// connection) and returns requests per second and the latency percentiles.
func load(tb testing.TB, c, n int, newReq func() *http.Request) (rps float64, p50, p99 time.Duration) {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	lat := make([]time.Duration, n)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= n {
					return
				}
				t0 := time.Now()
				resp, err := client.Do(newReq())
				if err != nil {
					tb.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					tb.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[k] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return float64(n) / elapsed.Seconds(), lat[n/2], lat[n*99/100]
}

// BenchmarkSecretRead measures authenticated reads of a 100-byte secret on
// loopback, and a bare net/http handler answering the same bytes in the same
// run; it reports both throughputs and their ratio (target: >= 0.5).
func BenchmarkSecretRead(b *testing.B) {
	e := MustServe(b)
	e.mustDo(b, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	value := strings.Repeat("v", 100)
	e.mustDo(b, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": value}, 200)
	_, reader := e.mustToken(b, e.admin, "reader", "", "read:payments/prod/*")
	body := e.mustDo(b, reader, "GET", "/v1/secrets/payments/prod/KEY", nil, 200)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer bare.Close()
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			n := max(b.N, 200)
			bareRPS, bp50, bp99 := load(b, c, n, func() *http.Request {
				r, _ := http.NewRequest("GET", bare.URL+"/v1/secrets/payments/prod/KEY", nil)
				r.Header.Set("Authorization", "Bearer "+reader)
				return r
			})
			rps, p50, p99 := load(b, c, n, func() *http.Request {
				r, _ := http.NewRequest("GET", e.srv.URL+"/v1/secrets/payments/prod/KEY", nil)
				r.Header.Set("Authorization", "Bearer "+reader)
				return r
			})
			b.ReportMetric(rps, "req/s")
			b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
			b.ReportMetric(bareRPS, "bare-req/s")
			b.ReportMetric(float64(bp50.Microseconds()), "bare-p50-µs")
			b.ReportMetric(float64(bp99.Microseconds()), "bare-p99-µs")
			b.ReportMetric(rps/bareRPS, "ratio")
		})
	}
}

// BenchmarkSecretWrite measures durable writes (each a committed SQLite
// transaction with synchronous=FULL) of a 100-byte value.
func BenchmarkSecretWrite(b *testing.B) {
	e := MustServe(b)
	e.mustDo(b, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	payload := []byte(`{"value":"` + strings.Repeat("w", 100) + `"}`)
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			n := max(b.N, 100)
			k := 0
			var mu sync.Mutex
			rps, p50, p99 := load(b, c, n, func() *http.Request {
				mu.Lock()
				k++
				name := fmt.Sprintf("KEY_%d", k%50)
				mu.Unlock()
				r, _ := http.NewRequest("PUT", e.srv.URL+"/v1/secrets/payments/prod/"+name, bytes.NewReader(payload))
				r.Header.Set("Authorization", "Bearer "+e.admin)
				r.Header.Set("Content-Type", "application/json")
				return r
			})
			b.ReportMetric(rps, "req/s")
			b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
		})
	}
}
