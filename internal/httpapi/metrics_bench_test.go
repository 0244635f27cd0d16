package httpapi

import (
	"testing"
	"time"
)

// BenchmarkMetricsObserve is what counting one request costs (a counter by
// route and code, the latency histogram by route), from all CPUs at once.
// 2026-12-05, 2 CPUs: 71–83 ns and no allocation (client_golang's
// WithLabelValues(…).Inc() and .Observe(): 259–282 ns, 1 allocation).
func BenchmarkMetricsObserve(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.observe("GET /v1/secrets/{project}/{env}/{name}", 200, 700*time.Microsecond)
		}
	})
}
