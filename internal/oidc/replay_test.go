package oidc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

func TestMemoryReplayCache(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	c := &MemoryReplayCache{Now: func() time.Time { return now }, Max: 3}
	ctx := context.Background()
	seen := func(id string, until time.Time) bool {
		t.Helper()
		s, err := c.Seen(ctx, id, until)
		if err != nil {
			t.Fatalf("Seen(%s): %v", id, err)
		}
		return s
	}
	steps := []struct {
		name    string
		advance time.Duration
		id      string
		until   time.Duration // from the current now
		want    bool
	}{
		{"first use", 0, "a", 5 * time.Minute, false},
		{"second use", time.Minute, "a", 5 * time.Minute, true},
		{"other id", 0, "b", time.Minute, false},
		{"b expired: usable again", 2 * time.Minute, "b", time.Minute, false},
		{"a still remembered", 0, "a", time.Minute, true},
		{"a expired", 3 * time.Minute, "a", time.Minute, false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if got := seen(s.id, now.Add(s.until)); got != s.want {
			t.Fatalf("%s: got %v; want %v", s.name, got, s.want)
		}
	}

	// Full of live ids: refuse rather than forget one.
	seen("c", now.Add(time.Hour))
	seen("e", now.Add(time.Hour))
	if c.Len() != 3 {
		t.Fatalf("got %d ids; want 3", c.Len())
	}
	_, err := c.Seen(ctx, "d", now.Add(time.Hour))
	if tokenward.ErrorCode(err) != tokenward.EUNAVAILABLE {
		t.Fatalf("got %v; want EUNAVAILABLE when full", err)
	}
	// Once ids expire, a sweep makes room.
	now = now.Add(2 * time.Hour)
	if seen("d", now.Add(time.Minute)) {
		t.Fatalf("got seen for a new id; want not seen")
	}
	if c.Len() != 1 {
		t.Fatalf("got %d ids after the sweep; want 1", c.Len())
	}
}

func TestMemoryReplayCacheSweepsOverTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	c := NewMemoryReplayCache()
	c.Now = func() time.Time { return now }
	for i := range 100 {
		if _, err := c.Seen(context.Background(), fmt.Sprint(i), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(sweepEvery + time.Minute)
	if _, err := c.Seen(context.Background(), "new", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := c.Len(); got != 1 {
		t.Fatalf("got %d ids; want 1 after expired ones were swept", got)
	}
}
