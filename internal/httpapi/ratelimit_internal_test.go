package httpapi

import (
	"strconv"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

func TestBucketsTakeAndRefill(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	b := newBuckets(Limit{Rate: 2, Burst: 3}, 10)
	for i := range 3 {
		if ok, _ := b.take("tok", now); !ok {
			t.Fatalf("request %d: got refused; want served (burst 3)", i+1)
		}
	}
	ok, wait := b.take("tok", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: got ok=%v wait=%v; want refused, wait 500ms", ok, wait)
	}
	if ok, _ := b.take("other", now); !ok {
		t.Fatal("another key: got refused; want its own bucket")
	}
	// A refusal spends nothing: half a second later one request fits.
	if ok, _ := b.take("tok", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("after 500ms: got refused; want served")
	}
	if ok, _ := b.allowed("tok", now.Add(500*time.Millisecond)); ok {
		t.Fatal("allowed after spending the refill: got true; want false")
	}
}

// TestBucketsBounded floods the table with distinct keys: it never holds
// more than max, and keys still being limited survive the eviction of idle
// ones.
func TestBucketsBounded(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const max = 100
	b := newBuckets(Limit{Rate: 1, Burst: 1}, max)
	b.take("hot", now) // empty: refused until a second has passed
	for i := range 10 * max {
		b.take("k"+strconv.Itoa(i), now)
		if n := b.len(); n > max {
			t.Fatalf("after %d keys: got %d buckets; want at most %d", i+1, n, max)
		}
	}
	// Idle buckets (full again) go first.
	later := now.Add(10 * time.Second)
	b2 := newBuckets(Limit{Rate: 1, Burst: 2}, max)
	for i := range max - 1 {
		b2.take("idle"+strconv.Itoa(i), now)
	}
	b2.take("hot", later)
	b2.take("hot", later) // empty now
	b2.take("new", later) // table full: the idle ones are forgotten
	if ok, _ := b2.allowed("hot", later); ok {
		t.Fatal("hot key after eviction: got a fresh bucket; want its empty one kept")
	}
	if n := b2.len(); n != 2 {
		t.Fatalf("after evicting idle buckets: got %d; want 2 (hot, new)", n)
	}
}

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limit
		err  bool
	}{
		{"", Limit{}, false},
		{"0", Limit{}, false},
		{"50/s", Limit{Rate: 50, Burst: 50}, false},
		{"50/s,burst=100", Limit{Rate: 50, Burst: 100}, false},
		{"0.5/s", Limit{Rate: 0.5, Burst: 1}, false},
		{"120/m", Limit{Rate: 2, Burst: 2}, false},
		{"50", Limit{}, true},
		{"50/h", Limit{}, true},
		{"-1/s", Limit{}, true},
		{"0/s", Limit{}, true},
		{"NaN/s", Limit{}, true},
		{"Inf/s", Limit{}, true},
		{"50/s,burst=0", Limit{}, true},
		{"50/s,burst=x", Limit{}, true},
		{"50/s,bust=5", Limit{}, true},
		{"50/s,burst=5,burst=6", Limit{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLimit(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzParseLimit: ParseLimit never panics, what it accepts limits
// something sane, and its String reads back the same.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"0", "50/s", "50/s,burst=100", "1.5/m", "1e9/s", "x/s,burst="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			return
		}
		if !l.On() {
			return
		}
		if l.Burst < 1 || l.Rate <= 0 {
			t.Fatalf("ParseLimit(%q) = %+v: want a positive rate and burst", s, l)
		}
		back, err := ParseLimit(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseLimit(%q).String() = %q reads back as %+v, %v", s, l.String(), back, err)
		}
	})
}

func TestFailureKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not-an-ip", "not-an-ip"},
	} {
		if got := tokenward.SourceKey(tc.in); got != tc.want {
			t.Errorf("SourceKey(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}
