package pgproxy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// BenchmarkAddedLatency measures, in one run, the latency of a simple
// query (SELECT 1, simple protocol) on a session straight to the upstream
// and on one through the proxy, alternating, and reports each path's p50
// and p99 and the difference: the latency the gateway adds. Both sessions
// reach the upstream over TLS (sslmode prefer); the client-to-proxy hop is
// plain loopback. Run it as
//
//	go test -run '^$' -bench AddedLatency -benchtime 5000x ./internal/pgproxy
func BenchmarkAddedLatency(b *testing.B) {
	f := newFixture(b)
	_, secret := f.token(b, "bench", "gateway:pgprod")
	ctx := context.Background()
	direct, err := pgconn.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=prefer", f.role, f.password, f.cluster.Host, f.cluster.Port, f.dbName))
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close(ctx)
	proxied, err := pgconn.Connect(ctx, f.connURL("pgprod", secret, "disable"))
	if err != nil {
		b.Fatal(err)
	}
	defer proxied.Close(ctx)
	query := func(c *pgconn.PgConn) time.Duration {
		start := time.Now()
		if _, err := c.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for range 100 { // warm both paths
		query(direct)
		query(proxied)
	}
	d := make([]time.Duration, 0, b.N)
	p := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		d = append(d, query(direct))
		p = append(p, query(proxied))
	}
	b.StopTimer()
	slices.Sort(d)
	slices.Sort(p)
	pct := func(s []time.Duration, q float64) float64 {
		return float64(s[int(float64(len(s)-1)*q)].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(d, 0.50), "direct-p50-µs")
	b.ReportMetric(pct(d, 0.99), "direct-p99-µs")
	b.ReportMetric(pct(p, 0.50), "proxy-p50-µs")
	b.ReportMetric(pct(p, 0.99), "proxy-p99-µs")
	b.ReportMetric(pct(p, 0.50)-pct(d, 0.50), "added-p50-µs")
	b.ReportMetric(pct(p, 0.99)-pct(d, 0.99), "added-p99-µs")
}
