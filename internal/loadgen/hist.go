package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram counts durations in logarithmic buckets, as HdrHistogram does:
// below 2^subBits nanoseconds one bucket per nanosecond, above that every
// power of two split into 2^subBits buckets, so a quantile is off by less
// than 1/2^subBits (0.8%) of its value. Buckets are atomic counters, so all
// workers record into one histogram without a lock. The zero value is ready
// to use.
type Histogram struct {
	buckets [numBuckets]atomic.Uint64
	count   atomic.Uint64
	sum     atomic.Uint64 // nanoseconds
	max     atomic.Uint64 // nanoseconds
}

const (
	subBits = 7
	subN    = 1 << subBits
	// maxTracked caps recorded values (2^42 ns ≈ 73 min): longer ones count
	// in the last bucket, and Max still reports them exactly.
	maxTracked = 1<<42 - 1
	numBuckets = subN + (42-subBits)*subN
)

func bucketOf(v uint64) int {
	v = min(v, maxTracked)
	if v < subN {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	return subN + shift*subN + int(v>>shift) - subN // #nosec G115 -- v>>shift is below 2*subN after the shift
}

// bucketTop is the largest value bucket i holds.
func bucketTop(i int) uint64 {
	if i < subN {
		return uint64(i) // #nosec G115 -- i < subN, not negative
	}
	shift := (i - subN) / subN
	sub := uint64((i-subN)%subN + subN)
	return (sub+1)<<shift - 1
}

// Record counts one duration (negative counts as 0).
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.buckets[bucketOf(v)].Add(1)
	h.count.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Max is the longest duration recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) } // #nosec G115 -- recorded durations are non-negative int64 nanoseconds

// Mean is the average duration recorded (0 when none).
func (h *Histogram) Mean() time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n) // #nosec G115 -- a mean of non-negative int64 nanoseconds
}

// Quantile returns the duration below or at which a fraction q (0..1) of the
// recorded durations lie: the top of the bucket holding the
// ceil(q×count)-th smallest, never above Max (0 when none).
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank && i < numBuckets-1 {
			return min(time.Duration(bucketTop(i)), h.Max()) // #nosec G115 -- bucket tops are below the int64 maximum recorded
		}
	}
	return h.Max() // the last bucket holds everything past the tracked range
}
