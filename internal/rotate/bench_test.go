package rotate_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	. "github.com/tokenward/tokenward/internal/rotate"
)

// BenchmarkRotateNowRandom measures one whole rotation (create → finish,
// grace 0 → revoke → done) of a random secret on the SQLite store, sealed
// by the core as the server runs it.
func BenchmarkRotateNowRandom(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, map[string]Rotator{"random": &Random{}})
	for i := range b.N {
		path := fmt.Sprintf("bench/prod/K%d", i)
		e.mustPut(b, path, "initial")
		e.mustPolicy(b, &Policy{Path: path, Every: 24 * time.Hour, Rotator: "random"})
	}
	b.ResetTimer()
	for i := range b.N {
		r, err := e.m.RotateNow(ctx, fmt.Sprintf("bench/prod/K%d", i), "bench")
		if err != nil || r.Step != StepDone {
			b.Fatalf("RotateNow: %v, %v", r, err)
		}
	}
}

func BenchmarkTemplateExecute(b *testing.B) {
	t, err := ParseTemplate("sk_{{rand 32}}")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := t.Execute(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}
