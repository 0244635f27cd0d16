package rotate

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

func TestSQLiteSealsValuesAtRest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"random": &Random{}})
	secret := "plaintext-canary-3f9a1c77"
	e.mustPut(t, testPath, secret)
	if got := e.label(t, testPath, LabelCurrent); got != secret {
		t.Fatalf("read back: got %q; want the value", got)
	}
	e.store.Close()
	for _, f := range []string{e.file, e.file + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s holds the value in plaintext", f)
		}
	}
	// A wrong key cannot read it.
	e.key[0] ^= 1
	e.open(t, nil)
	if _, err := e.store.Labeled(ctx, testPath, LabelCurrent); err == nil {
		t.Fatalf("read with a wrong key: got nil error; want a failure")
	}
}

func TestSQLitePromoteIsAtomicAndIdempotent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	s := e.store
	v1 := e.mustPut(t, testPath, "one")
	v2, err := s.PutPending(ctx, testPath, "rot_a", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Promote(ctx, testPath, v1); err != nil {
		t.Fatalf("Promote of the CURRENT version: got %v; want nil (no-op)", err)
	}
	if err := s.Promote(ctx, testPath, 99); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Fatalf("Promote of a version that is not PENDING: got %v; want conflict", err)
	}
	for range 2 {
		if err := s.Promote(ctx, testPath, v2); err != nil {
			t.Fatalf("Promote: %v", err)
		}
	}
	tests := []struct {
		label   string
		version int
	}{
		{LabelCurrent, v2},
		{LabelPrevious, v1},
	}
	for _, tt := range tests {
		v, err := s.Labeled(ctx, testPath, tt.label)
		if err != nil || v.Number != tt.version {
			t.Fatalf("%s: got %v, %v; want version %d", tt.label, v, err, tt.version)
		}
	}
	if _, err := s.Labeled(ctx, testPath, LabelPending); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Fatalf("PENDING after promote: got %v; want not found", err)
	}
	if v, _ := s.Version(ctx, testPath, v2); v.RotationID != "rot_a" {
		t.Fatalf("rotation id: got %q; want rot_a", v.RotationID)
	}
}

func TestSQLiteErrorsDoNotHoldValues(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, map[string]Rotator{"down": &failing{}})
	e.m.MaxAttempts = 1
	e.mustPut(t, testPath, "canary-value-xyz")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Rotator: "down"})
	r, err := e.m.RotateNow(ctx, testPath, "manual")
	if err == nil || r.Step != StepFailed {
		t.Fatalf("got %v, step %s; want a failure", err, r.Step)
	}
	for _, s := range []string{err.Error(), r.Error, e.logs.String()} {
		if bytes.Contains([]byte(s), []byte("canary-value-xyz")) {
			t.Fatalf("a value leaked into %q", s)
		}
	}
}
