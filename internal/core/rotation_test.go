package core_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/rotate"
)

// TestRotationSecretsSealAndLabel drives the adapter the rotation machine
// uses: a pending value is sealed at rest like any version and bound to its
// number, promote and restore move CURRENT, and a plain write during a
// rotation goes above the pending version.
func TestRotationSecretsSealAndLabel(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	const path, pending = "payments/prod/API_KEY", "pending-canary-value-a81f3c"
	f.put(t, "prod", "API_KEY", "current-canary-value-77d2e0")
	s, err := f.core.RotationSecrets()
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.PutPending(ctx, path, "rot_x", []byte(pending))
	if err != nil || n != 2 {
		t.Fatalf("PutPending: got %d, %v; want version 2", n, err)
	}
	v, err := s.Labeled(ctx, path, rotate.LabelPending)
	if err != nil || string(v.Value) != pending || v.RotationID != "rot_x" || v.Number != 2 {
		t.Fatalf("PENDING: got %+v, %v; want version 2 of rot_x with the value", v, err)
	}
	if cur, err := s.ReadSecret(ctx, path); err != nil || string(cur) != "current-canary-value-77d2e0" {
		t.Fatalf("ReadSecret during a rotation: got %v; want the CURRENT value", err)
	}
	// A plain write meanwhile takes version 3 and becomes CURRENT.
	meta, err := f.core.PutSecret(ctx, f.admin, core.PutSecretInput{Project: "payments", Env: "prod", Name: "API_KEY", Value: []byte("manual-write-value")})
	if err != nil || meta.Version != 3 {
		t.Fatalf("plain write during a rotation: got %v, %v; want version 3", meta, err)
	}
	if err := s.Unlabel(ctx, path, rotate.LabelPending, 2); err != nil {
		t.Fatal(err)
	}
	n, err = s.PutPending(ctx, path, "rot_y", []byte(pending+"2"))
	if err != nil || n != 4 {
		t.Fatalf("second PutPending: got %d, %v; want version 4", n, err)
	}
	if err := s.Promote(ctx, path, 4); err != nil {
		t.Fatal(err)
	}
	_, value, err := f.core.GetSecret(ctx, f.admin, "payments", "prod", "API_KEY", 0)
	if err != nil || string(value) != pending+"2" {
		t.Fatalf("CURRENT after promote: got %v; want the pending value", err)
	}
	_, prev, n, err := f.core.GetSecretLabel(ctx, f.admin, "payments", "prod", "API_KEY", tokenward.LabelPrevious)
	if err != nil || n != 3 || string(prev) != "manual-write-value" {
		t.Fatalf("PREVIOUS: got version %d, %v; want 3", n, err)
	}
	if err := s.Restore(ctx, path, 3); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.ReadSecret(ctx, path); string(cur) != "manual-write-value" {
		t.Fatalf("CURRENT after restore: got another value; want version 3's")
	}
	f.db.Close()
	for _, file := range []string{f.path, f.path + "-wal"} {
		b, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("pending-canary-value")) {
			t.Fatalf("%s holds a pending value in plaintext", file)
		}
	}
}

// TestRotationTokensMintOnlyLikeAUsableToken: the tokenward rotator mints
// a successor only for a token that may still be used. A revoked
// (or suspended) or expired token is no authority to mint one: its
// successor would carry its grants, with a fresh lifetime, past its end.
func TestRotationTokensMintOnlyLikeAUsableToken(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	now := time.Now()
	f.core.Now = func() time.Time { return now }
	mint := func(name string, ttl time.Duration) string {
		_, raw, err := f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: name, Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tokens := f.core.RotationTokens()
	live, expiring, revoked := mint("live", time.Hour), mint("expiring", time.Hour), mint("revoked", 0)
	if _, err := tokens.Mint(ctx, live); err != nil {
		t.Fatalf("successor of a live token: %v", err)
	}
	if err := tokens.Revoke(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour) // "expiring" expires, to the nanosecond
	for name, raw := range map[string]string{"expired": expiring, "revoked": revoked} {
		succ, err := tokens.Mint(ctx, raw)
		if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
			t.Errorf("successor of a %s token: got %v; want conflict", name, err)
		}
		if succ != "" {
			if _, err := f.core.Authenticate(ctx, succ, ""); err == nil {
				t.Errorf("the successor of a %s token authenticates", name)
			}
		}
	}
}
