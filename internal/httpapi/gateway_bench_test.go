package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkGateway measures what the gateway adds to a call: the same
// small GET to a loopback upstream, directly and through
// /gw/<route>/ (authentication, grant, allow rules, injection of the
// CURRENT value, masking, audit hook), one call at a time for latency
// (p50/p99 in µs) and 8 at a time for throughput. docs/benchmarks.md has
// the figures.
func BenchmarkGateway(b *testing.B) {
	g := mustServeGateway(b)
	g.mustDo(b, g.admin, "POST", "/v1/gateway/routes", map[string]any{
		"name": "bench", "upstream": g.upstream.URL, "secret": "acme/prod/GITHUB_TOKEN", "inject": "header:Authorization=Bearer {{value}}",
		"allow": []string{"GET /repos/acme/*"}, "allow_nets": []string{"127.0.0.0/8"}}, 201)
	_, tok := g.mustToken(b, g.admin, "bench", "", "gateway:bench")
	go func() { // the recording upstream's channel: drained
		for range g.seen {
		}
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	targets := []struct{ name, url, auth string }{
		{"direct", g.upstream.URL + "/repos/acme/web", "Bearer ghp_direct"},
		{"gateway", g.srv.URL + "/gw/bench/repos/acme/web", "Bearer " + tok},
	}
	call := func(b *testing.B, url, auth string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", auth)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: got %d; want 200", url, resp.StatusCode)
		}
	}
	// A 64 MiB download, for throughput of a body streamed through the
	// masker.
	const size = 64 << 20
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for i := range buf {
			buf[i] = byte('a' + i%26)
		}
		for n := 0; n < size; n += len(buf) {
			w.Write(buf)
		}
	}))
	defer big.Close()
	g.mustDo(b, g.admin, "POST", "/v1/gateway/routes", map[string]any{
		"name": "big", "upstream": big.URL, "secret": "acme/prod/GITHUB_TOKEN", "inject": "header:Authorization=Bearer {{value}}",
		"allow": []string{"GET /**"}, "allow_nets": []string{"127.0.0.0/8"}}, 201)
	_, bigTok := g.mustToken(b, g.admin, "big", "", "gateway:big")
	for _, tt := range []struct{ name, url, auth string }{{"direct", big.URL + "/file", ""}, {"gateway", g.srv.URL + "/gw/big/file", "Bearer " + bigTok}} {
		b.Run(tt.name+"/stream64MiB", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				call(b, tt.url, tt.auth)
			}
		})
	}
	for _, tt := range targets {
		b.Run(tt.name+"/serial", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				call(b, tt.url, tt.auth)
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
		b.Run(tt.name+"/parallel8", func(b *testing.B) {
			var wg sync.WaitGroup
			n := b.N
			start := time.Now()
			b.ResetTimer()
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 8 {
						call(b, tt.url, tt.auth)
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "calls/s")
		})
	}
}
