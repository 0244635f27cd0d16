package jsonw

import (
	"bytes"
	"testing"
	"time"
)

// checkTime compares AppendTime with time.Time.MarshalJSON, the reference,
// failures included.
func checkTime(t *testing.T, tm time.Time) {
	t.Helper()
	want, werr := tm.MarshalJSON()
	got, ok := AppendTime([]byte("prefix"), tm)
	switch {
	case werr != nil && ok:
		t.Fatalf("%v: got %s; MarshalJSON fails: %v", tm, got, werr)
	case werr != nil && string(got) != "prefix":
		t.Fatalf("%v: MarshalJSON fails; got b changed to %q", tm, got)
	case werr == nil && !ok:
		t.Fatalf("%v: refused; want %s", tm, want)
	case werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)):
		t.Fatalf("%v: got %s; want %s", tm, got[len("prefix"):], want)
	}
}

func TestAppendTime(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	west := time.FixedZone("west", -8*3600)
	tooFar := time.FixedZone("too far", 24*3600)
	for _, tm := range []time.Time{
		{},
		time.Unix(0, 0).UTC(),
		time.Unix(0, 1).UTC(),
		time.Unix(-1, 999_999_999).UTC(),
		time.Date(1999, 12, 31, 23, 59, 59, 100_000_000, time.UTC),
		time.Date(2000, 2, 29, 12, 0, 0, 120_000, time.UTC),
		time.Date(2026, 12, 5, 4, 5, 6, 123_456_789, time.UTC),
		time.Date(2100, 3, 1, 0, 0, 0, 10, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 5, 4, 5, 6, 7, east),
		time.Date(2026, 12, 5, 4, 5, 6, 7, west),
		time.Date(2026, 12, 5, 4, 5, 6, 7, tooFar),
		time.Date(2026, 12, 5, 4, 5, 6, 7, time.Local),
		time.Date(9999, 12, 31, 23, 0, 0, 0, west), // year 10000 in UTC, 9999 here
	} {
		checkTime(t, tm)
	}
	// Every day of a leap cycle's years and the century rules around them.
	for d := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2002; d = d.Add(24 * time.Hour) {
		checkTime(t, d)
	}
	for _, y := range []int{1970, 2000, 2100, 2400, 4000, 9999} {
		checkTime(t, time.Date(y, 2, 28, 23, 59, 59, 0, time.UTC))
		checkTime(t, time.Date(y, 3, 1, 0, 0, 0, 0, time.UTC))
	}
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0), int32(0))
	f.Add(int64(1796443000), int64(123456789), int32(0))
	f.Add(int64(maxFastUnix-1), int64(999999999), int32(-3600))
	f.Add(int64(-62135596800), int64(5), int32(86400))
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int32) {
		tm := time.Unix(sec, nsec).UTC()
		checkTime(t, tm)
		if offset != 0 {
			checkTime(t, tm.In(time.FixedZone("", int(offset))))
		}
	})
}

func BenchmarkAppendTime(b *testing.B) {
	tm := time.Date(2026, 12, 5, 4, 5, 6, 123_456_000, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("jsonw", func(b *testing.B) {
		for b.Loop() {
			buf, _ = AppendTime(buf[:0], tm)
		}
	})
	b.Run("standard", func(b *testing.B) {
		for b.Loop() {
			buf, _ = appendTimeSlow(buf[:0], tm)
		}
	})
}
