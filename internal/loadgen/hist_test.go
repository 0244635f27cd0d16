package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBucketBounds: every value lands in the bucket whose top is at or
// above it and whose predecessor's top is below it, and a bucket is never
// wider than 1/128 of its values.
func TestBucketBounds(t *testing.T) {
	for i := range numBuckets - 1 {
		top := bucketTop(i)
		if got := bucketOf(top); got != i {
			t.Fatalf("bucketOf(bucketTop(%d) = %d) = %d; want %d", i, top, got, i)
		}
		if got := bucketOf(top + 1); got != i+1 {
			t.Fatalf("bucketOf(%d) = %d; want %d", top+1, got, i+1)
		}
		if i > 0 {
			width := top - bucketTop(i-1)
			if width > 1 && float64(width)/float64(top) > 1.0/subN {
				t.Fatalf("bucket %d is %d wide at %d: more than 1/%d", i, width, top, subN)
			}
		}
	}
	if got := bucketOf(1 << 60); got != numBuckets-1 {
		t.Errorf("a value past the tracked range: bucket %d; want the last, %d", got, numBuckets-1)
	}
}

// TestQuantiles compares the histogram's quantiles with exact ones over
// sorted samples: within 1/128 above, never below.
func TestQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 0-100µs", func() time.Duration { return time.Duration(rng.Int64N(100_000)) }},
		{"log-uniform 1µs-10s", func() time.Duration {
			return time.Duration(1000 * float64(uint64(1)<<rng.IntN(23)) * (1 + rng.Float64()))
		}},
		{"tiny", func() time.Duration { return time.Duration(rng.Int64N(50)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			var all []time.Duration
			var sum time.Duration
			for range 20000 {
				d := tc.gen()
				h.Record(d)
				all = append(all, d)
				sum += d
			}
			slices.Sort(all)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(1, int(q*float64(len(all))+0.999999))
				exact := all[min(rank, len(all))-1]
				got := h.Quantile(q)
				if got < exact || float64(got-exact) > float64(exact)/subN+1 {
					t.Errorf("q=%g: got %v; want %v (+1/%d)", q, got, exact, subN)
				}
			}
			if h.Max() != all[len(all)-1] {
				t.Errorf("max: got %v; want %v", h.Max(), all[len(all)-1])
			}
			if h.Count() != uint64(len(all)) {
				t.Errorf("count: got %d; want %d", h.Count(), len(all))
			}
			if want := sum / time.Duration(len(all)); h.Mean() != want {
				t.Errorf("mean: got %v; want %v", h.Mean(), want)
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatalf("empty: got %v, %v, %v; want zeros", h.Quantile(0.5), h.Max(), h.Mean())
	}
	h.Record(-time.Second) // a clock step backwards counts as 0
	h.Record(2 * time.Hour)
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("p50 of {0, 2h}: got %v; want 0", got)
	}
	if got := h.Quantile(1); got != 2*time.Hour {
		t.Errorf("p100 of {0, 2h}: got %v; want 2h (past the tracked range, capped by Max)", got)
	}
}
