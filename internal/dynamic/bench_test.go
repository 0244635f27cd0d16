package dynamic_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/pgtest"
)

// BenchmarkLeases makes and revokes leases of a postgres source against
// the local PostgreSQL (the lease store is SQLite, the server's default):
// creation (record, CREATE ROLE with a SCRAM verifier, activation) and
// revocation (NOLOGIN, end sessions, REASSIGN/DROP OWNED, DROP ROLE,
// record) per second and their p99, with 1 and 8 callers at once.
// docs/benchmarks.md has the figures.
func BenchmarkLeases(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run("workers="+itoa(workers), func(b *testing.B) {
			f := newFixture(b, pgtest.Shared(b))
			f.engine.Now = time.Now
			f.source(b, 15*time.Minute, time.Hour)
			tok := f.token(b, "bench", 0, "read:acme/prod/db", "revoke:acme/prod/db")
			f.engine.Limits.PerToken, f.engine.Limits.PerSource = 1<<30, 1<<30
			var mu sync.Mutex
			var create, revoke []time.Duration
			var createTotal, revokeTotal time.Duration
			b.ResetTimer()
			var wg sync.WaitGroup
			next := make(chan struct{})
			go func() {
				for range b.N {
					next <- struct{}{}
				}
				close(next)
			}()
			start := time.Now()
			for range workers {
				wg.Go(func() {
					for range next {
						t0 := time.Now()
						l, _, err := f.engine.Lease(context.Background(), tok, "acme", "prod", "db")
						t1 := time.Now()
						if err != nil {
							b.Error(err)
							return
						}
						if _, err := f.engine.Revoke(context.Background(), tok, l.ID); err != nil {
							b.Error(err)
							return
						}
						t2 := time.Now()
						mu.Lock()
						create, revoke = append(create, t1.Sub(t0)), append(revoke, t2.Sub(t1))
						createTotal += t1.Sub(t0)
						revokeTotal += t2.Sub(t1)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if len(create) == 0 {
				return
			}
			// The callers alternate between the two: each operation's rate
			// is how many were done per second of the callers' time in it.
			rate := func(total time.Duration) float64 { return float64(len(create)) / (total.Seconds() / float64(workers)) }
			b.ReportMetric(rate(createTotal), "creates/s")
			b.ReportMetric(rate(revokeTotal), "revokes/s")
			b.ReportMetric(float64(len(create))/elapsed.Seconds(), "leases/s")
			b.ReportMetric(p99(create).Seconds()*1000, "create-p99-ms")
			b.ReportMetric(p99(revoke).Seconds()*1000, "revoke-p99-ms")
		})
	}
}

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

func itoa(n int) string { return string(rune('0' + n)) }
