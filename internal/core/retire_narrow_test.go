package core_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/monitor"
)

// withMonitoring turns monitoring on for f (SQLite, entries observed in
// line).
func withMonitoring(t *testing.T, f *fixture) {
	t.Helper()
	mon, err := monitor.New(monitor.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f.core.Monitoring = &core.Monitoring{Store: f.db, Monitor: mon}
}

func (f *fixture) token(t *testing.T, name string, grants ...string) *tokenward.Token {
	t.Helper()
	gs, err := tokenward.ParseGrants(grants)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: name, Kind: tokenward.TokenService, Grants: gs})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) grantsOf(t *testing.T, id string) (string, bool) {
	t.Helper()
	tok, err := f.core.Token(t.Context(), f.admin, id)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(tok.Grants.Strings(), " "), tok.RevokedAt.IsZero()
}

// TestRetireNarrowsWhatTheTokenHoldsThen: a token the plan narrows whose
// grants change before the narrowing (another retirement of the same
// project meanwhile) must not get back a grant into a scope retired in
// between: the narrowing drops the scope from the grants the token holds
// when it is narrowed, not from those it held at the plan.
func TestRetireNarrowsWhatTheTokenHoldsThen(t *testing.T) {
	f := mustFixture(t)
	withMonitoring(t, f)
	ctx := t.Context()
	if err := f.core.CreateEnv(ctx, f.admin, "payments", "staging"); err != nil {
		t.Fatal(err)
	}
	tok := f.token(t, "three", "read:payments/staging/*", "read:payments/dev/*", "read:payments/prod/*")
	inner := false
	f.core.Monitoring.RetireHooks = []core.RetireHook{func(ctx context.Context, project, env string, dryRun bool) ([]string, error) {
		if dryRun || inner || env != "staging" {
			return nil, nil
		}
		// Meanwhile payments/dev retires (another request).
		inner = true
		_, err := f.core.Retire(ctx, f.admin, "payments", "dev", 0, false)
		return nil, err
	}}
	if _, err := f.core.Retire(ctx, f.admin, "payments", "staging", 0, false); err != nil {
		t.Fatal(err)
	}
	got, active := f.grantsOf(t, tok.ID)
	if got != "read:payments/prod/*" || !active {
		t.Fatalf("token after payments/dev and payments/staging retired: got grants %q (active %v); want read:payments/prod/* only", got, active)
	}
}

// TestRetireGoesOnPastATokenRevokedMeanwhile: a token the plan narrows
// that is revoked before the narrowing (by its owner, a leak report, the
// hygiene job) has nothing left to narrow; the retirement must still
// narrow and revoke the others. It cannot be run again: the environment
// is archived already.
func TestRetireGoesOnPastATokenRevokedMeanwhile(t *testing.T) {
	f := mustFixture(t)
	withMonitoring(t, f)
	ctx := t.Context()
	a := f.token(t, "a", "read:payments/dev/*", "read:payments/prod/*")
	b := f.token(t, "b", "read:payments/dev/*", "read:payments/prod/*")
	c := f.token(t, "c", "read:payments/dev/*", "read:payments/prod/*")
	f.core.Monitoring.RetireHooks = []core.RetireHook{func(ctx context.Context, project, env string, dryRun bool) ([]string, error) {
		if !dryRun {
			_, err := f.core.RevokeToken(ctx, f.admin, b.ID)
			return nil, err
		}
		return nil, nil
	}}
	if _, err := f.core.Retire(ctx, f.admin, "payments", "dev", 0, false); err != nil {
		t.Fatalf("retire with a token revoked meanwhile: %v", err)
	}
	for _, tok := range []*tokenward.Token{a, c} {
		if got, active := f.grantsOf(t, tok.ID); got != "read:payments/prod/*" || !active {
			t.Errorf("token %s after payments/dev retired: got grants %q (active %v); want read:payments/prod/*", tok.Name, got, active)
		}
	}
}
