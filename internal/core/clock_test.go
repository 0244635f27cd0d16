package core_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/rotate"
)

// clock is a settable clock for core.Core.Now and rotate.Machine.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestClockJumpsAroundTokenExpiry moves the engine's clock to, around and
// across a token's expiry, forwards and backwards, with the token cache on:
// a token is refused from the nanosecond of its expiry on, also when its
// record is cached; a revoked token stays refused whatever the clock says,
// even before it was made; and a revocation made behind the engine's back
// (another server) is not hidden by a cache entry from the "future" after a
// backwards jump. Expiry is a comparison with the clock, so an expired,
// unrevoked token is accepted again if the clock goes back before its
// expiry: the row is the one it was, and no state says it expired.
func TestClockJumpsAroundTokenExpiry(t *testing.T) {
	f := mustFixture(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &clock{t0}
	f.core.Now = clk.now
	f.core.TokenCacheTTL = 2 * time.Second
	const ttl = time.Hour
	expiry := t0.Add(ttl)
	grant := tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}
	tok, raw, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: "expiring", Grants: grant, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.Equal(expiry) {
		t.Fatalf("ExpiresAt: got %s; want %s", tok.ExpiresAt, expiry)
	}
	type step struct {
		at       time.Time
		revoke   bool // revoke through the engine at this time, before the check
		accepted bool
		reason   string // in the refusal
	}
	for i, s := range []step{
		{at: t0, accepted: true},
		{at: expiry.Add(-time.Nanosecond), accepted: true}, // cached now
		{at: expiry, reason: "expired"},                    // cached record, refused at the boundary
		{at: expiry.Add(time.Nanosecond), reason: "expired"},
		{at: expiry.Add(30 * 24 * time.Hour), reason: "expired"},
		{at: expiry.Add(-time.Nanosecond), accepted: true}, // the clock went back: not expired by it
		{at: t0.Add(30 * time.Minute), revoke: true, reason: "revoked"},
		{at: t0.Add(-24 * time.Hour), reason: "revoked"}, // before it was even made
		{at: expiry.Add(-time.Nanosecond), reason: "revoked"},
		{at: expiry.Add(time.Hour), reason: "revoked"},
	} {
		clk.t = s.at
		if s.revoke {
			if _, err := f.core.RevokeToken(t.Context(), f.admin, tok.ID); err != nil {
				t.Fatal(err)
			}
		}
		got, err := f.core.Authenticate(t.Context(), raw, "10.0.0.9")
		switch {
		case s.accepted && (err != nil || got.ID != tok.ID):
			t.Fatalf("step %d at expiry%+v: got %v; want accepted", i, s.at.Sub(expiry), err)
		case !s.accepted && (tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED || !strings.Contains(err.Error(), s.reason)):
			t.Fatalf("step %d at expiry%+v: got %v; want 401 %s", i, s.at.Sub(expiry), err, s.reason)
		case err != nil && strings.Contains(err.Error(), raw):
			t.Fatalf("step %d: the refusal holds the token", i)
		}
	}

	// Another server revokes a token this engine has cached; then this
	// engine's clock jumps back. The cache entry now looks as if it came
	// from the future: it must not be trusted.
	other, raw2, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: "cached", Grants: grant})
	if err != nil {
		t.Fatal(err)
	}
	clk.t = t0.Add(10 * time.Hour)
	if _, err := f.core.Authenticate(t.Context(), raw2, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.db.RevokeToken(t.Context(), other.ID, clk.t); err != nil {
		t.Fatal(err)
	}
	for _, back := range []time.Duration{time.Nanosecond, time.Second, time.Hour} {
		clk.t = t0.Add(10 * time.Hour).Add(-back)
		if _, err := f.core.Authenticate(t.Context(), raw2, ""); tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED {
			t.Fatalf("clock %s back after a revocation by another server: got %v; want 401 (no cache entry from the future)", back, err)
		}
	}
}

// TestClockJumpsAroundRotationGrace runs a rotation on the engine with the
// machine on the same settable clock, then moves the clock around the end
// of its grace period: before it, PREVIOUS (and, for a rotated tokenward
// token, the old token) works however often the clock goes back and forth
// and the scheduler's Resume runs; from the nanosecond grace ends, Resume
// revokes it, and no backwards jump afterwards brings back PREVIOUS, the
// old token, or a rollback.
func TestClockJumpsAroundRotationGrace(t *testing.T) {
	for _, rotator := range []string{"random", "tokenward"} {
		t.Run(rotator, func(t *testing.T) {
			f := mustFixture(t)
			ctx := t.Context()
			t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			clk := &clock{t0}
			f.core.Now = clk.now
			secrets, err := f.core.RotationSecrets()
			if err != nil {
				t.Fatal(err)
			}
			mach := rotate.NewMachine(f.db.Rotations(), secrets, map[string]rotate.Rotator{
				"random":    &rotate.Random{},
				"tokenward": &rotate.Tokenward{Tokens: f.core.RotationTokens()},
			})
			mach.Now = clk.now
			var logs bytes.Buffer
			f.core.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			mach.Logger = f.core.Logger
			f.core.Rotation = &core.Rotation{Machine: mach}

			const path = "payments/prod/ROTATED"
			old := "initial-clock-canary-5d1e"
			if rotator == "tokenward" {
				var err error
				_, old, err = f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: "deploy", Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}})
				if err != nil {
					t.Fatal(err)
				}
			}
			f.put(t, "prod", "ROTATED", old)
			const grace = time.Hour
			if _, err := f.core.SetRotationPolicy(ctx, f.admin, &rotate.Policy{Path: path, Every: 30 * 24 * time.Hour, Grace: grace, Rotator: rotator}); err != nil {
				t.Fatal(err)
			}
			r, err := f.core.RotateNow(ctx, f.admin, path)
			if err != nil {
				t.Fatal(err)
			}
			graceEnd := t0.Add(grace)
			if r.Step != rotate.StepRevoke || !r.NextAt.Equal(graceEnd) {
				t.Fatalf("after rotate now: got step %s until %s; want revoke at %s", r.Step, r.NextAt, graceEnd)
			}
			_, cur, err := f.core.GetSecret(ctx, f.admin, "payments", "prod", "ROTATED", 0)
			if err != nil || string(cur) == old {
				t.Fatalf("CURRENT after rotate now: got %v; want a new value", err)
			}

			type step struct {
				at       time.Time
				previous bool // PREVIOUS readable (and the old token accepted)
				step     rotate.Step
			}
			for i, s := range []step{
				{graceEnd.Add(-time.Nanosecond), true, rotate.StepRevoke},
				{t0.Add(-48 * time.Hour), true, rotate.StepRevoke}, // back before the rotation
				{graceEnd.Add(-time.Nanosecond), true, rotate.StepRevoke},
				{graceEnd, false, rotate.StepDone}, // grace ends: revoked
				{graceEnd.Add(-time.Nanosecond), false, rotate.StepDone},
				{t0.Add(-48 * time.Hour), false, rotate.StepDone},
				{graceEnd.Add(90 * 24 * time.Hour), false, rotate.StepDone},
			} {
				clk.t = s.at
				if err := mach.Resume(ctx); err != nil {
					t.Fatalf("step %d: Resume: %v", i, err)
				}
				h, err := f.core.RotationHistory(ctx, f.admin, path, 0)
				if err != nil || len(h) != 1 || h[0].Step != s.step {
					t.Fatalf("step %d at grace end%+v: got %d rotations, %v; want one at %s", i, s.at.Sub(graceEnd), len(h), err, s.step)
				}
				_, prev, n, err := f.core.GetSecretLabel(ctx, f.admin, "payments", "prod", "ROTATED", tokenward.LabelPrevious)
				switch {
				case s.previous && (err != nil || string(prev) != old || n != 1):
					t.Fatalf("step %d at grace end%+v: PREVIOUS got version %d, %v; want version 1 with the old value", i, s.at.Sub(graceEnd), n, err)
				case !s.previous && tokenward.ErrorCode(err) != tokenward.ENOTFOUND:
					t.Fatalf("step %d at grace end%+v: PREVIOUS got version %d, %v; want not found", i, s.at.Sub(graceEnd), n, err)
				}
				if !s.previous { // during grace a rollback would succeed (and end the test's rotation)
					if _, err := f.core.RollbackRotation(ctx, f.admin, path); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
						t.Fatalf("step %d at grace end%+v: rollback got %v; want not found (nothing within grace)", i, s.at.Sub(graceEnd), err)
					}
				}
				if rotator != "tokenward" {
					continue
				}
				_, oldErr := f.core.Authenticate(ctx, old, "")
				if (oldErr == nil) != s.previous {
					t.Fatalf("step %d at grace end%+v: old token got %v; want accepted=%v", i, s.at.Sub(graceEnd), oldErr, s.previous)
				}
				if _, err := f.core.Authenticate(ctx, string(cur), ""); err != nil {
					t.Fatalf("step %d: the successor token got %v; want accepted", i, err)
				}
			}
			_, now, err := f.core.GetSecret(ctx, f.admin, "payments", "prod", "ROTATED", 0)
			if err != nil || string(now) != string(cur) {
				t.Fatalf("CURRENT after the clock jumps: got %v; want the rotated value", err)
			}
			if !strings.Contains(logs.String(), "rotation step done") {
				t.Fatalf("the log was not captured: %q", logs.String())
			}
			for _, v := range []string{old, string(cur)} {
				if strings.Contains(logs.String(), v) {
					t.Fatalf("the log holds a value or token (%.8q...)", v)
				}
			}
		})
	}
}
