package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/oidc"
)

// OIDCStore is what a backend provides for OIDC bindings and replay
// records: the suite needs no other part of a tokenward.Store.
type OIDCStore interface {
	core.BindingStore
	Close() error
}

// RunOIDC runs the OIDC part of the suite: binding CRUD and the atomic
// replay record.
func RunOIDC(t *testing.T, newStore func(t *testing.T) OIDCStore) {
	runEach(t, newStore, []named[OIDCStore]{
		{"Bindings", testBindings},
		{"ReplayRecord", testReplayRecord},
		{"ReplayConcurrent", testReplayConcurrent},
	}...)
}

func sampleBinding(name string) *oidc.Binding {
	return &oidc.Binding{
		Name:      name,
		Issuer:    "https://token.actions.githubusercontent.com",
		Audiences: []string{"tokenward", "other"},
		Claims: []oidc.ClaimCondition{
			{Claim: "repository", Op: oidc.MatchExact, Values: []string{"acme/payments"}},
			{Claim: "ref", Op: oidc.MatchOneOf, Values: []string{"refs/heads/main", "refs/tags/v*"}},
		},
		Grants:    tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")},
		TTL:       15 * time.Minute,
		Enabled:   true,
		CreatedAt: base,
		UpdatedAt: base,
		CreatedBy: "tok_creator",
	}
}

func testBindings(t *testing.T, s OIDCStore) {
	list, err := s.Bindings(ctx)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("got %d bindings in a new store; want 0", len(list))
	}
	b := sampleBinding("deploy-prod")
	must(t, s.CreateBinding(ctx, b))
	wantCode(t, s.CreateBinding(ctx, sampleBinding("deploy-prod")), tokenward.ECONFLICT)
	must(t, s.CreateBinding(ctx, sampleBinding("a-first")))

	got, err := s.Binding(ctx, "deploy-prod")
	must(t, err)
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("got %+v; want %+v", got, b)
	}
	_, err = s.Binding(ctx, "nope")
	wantCode(t, err, tokenward.ENOTFOUND)

	list, err = s.Bindings(ctx)
	must(t, err)
	if len(list) != 2 || list[0].Name != "a-first" || list[1].Name != "deploy-prod" {
		t.Fatalf("got %d bindings; want a-first, deploy-prod in order", len(list))
	}

	later := base.Add(time.Hour)
	must(t, s.SetBindingEnabled(ctx, "deploy-prod", false, later))
	got, err = s.Binding(ctx, "deploy-prod")
	must(t, err)
	if got.Enabled || !got.UpdatedAt.Equal(later) || !got.CreatedAt.Equal(base) {
		t.Fatalf("after disable: got enabled=%v updated=%v created=%v; want false, %v, %v", got.Enabled, got.UpdatedAt, got.CreatedAt, later, base)
	}
	must(t, s.SetBindingEnabled(ctx, "deploy-prod", true, later))
	if got, _ := s.Binding(ctx, "deploy-prod"); !got.Enabled {
		t.Fatalf("after enable: got enabled=false; want true")
	}
	wantCode(t, s.SetBindingEnabled(ctx, "nope", true, later), tokenward.ENOTFOUND)

	must(t, s.DeleteBinding(ctx, "deploy-prod"))
	_, err = s.Binding(ctx, "deploy-prod")
	wantCode(t, err, tokenward.ENOTFOUND)
	wantCode(t, s.DeleteBinding(ctx, "deploy-prod"), tokenward.ENOTFOUND)
	// The name is free again.
	must(t, s.CreateBinding(ctx, sampleBinding("deploy-prod")))
}

func testReplayRecord(t *testing.T, s OIDCStore) {
	until := base.Add(5 * time.Minute)
	for i, st := range []struct {
		id       string
		until    time.Time
		now      time.Time
		wantSeen bool
	}{
		{"jti:a", until, base, false},
		{"jti:a", until, base.Add(time.Minute), true},
		{"jti:b", until, base.Add(time.Minute), false},
		{"jti:a", until, until.Add(-time.Nanosecond), true},
		// Expired: swept, so the id may be recorded anew (the verifier has
		// refused the expired identity token long before).
		{"jti:a", until.Add(time.Hour), until, false},
		{"jti:a", until.Add(time.Hour), until.Add(time.Minute), true},
	} {
		seen, err := s.SeenIdentityToken(ctx, st.id, st.until, st.now)
		must(t, err)
		if seen != st.wantSeen {
			t.Fatalf("step %d: SeenIdentityToken(%s, now %v): got %v; want %v", i, st.id, st.now, seen, st.wantSeen)
		}
	}
}

func testReplayConcurrent(t *testing.T, s OIDCStore) { ReplayRace(t, s) }

// ReplayRace exchanges one identity token concurrently, the calls spread
// over servers (stores sharing one database, or just one store), in
// several rounds: exactly one call per round may see it as new.
func ReplayRace(t *testing.T, servers ...core.BindingStore) {
	const workers = 8
	for round := range 5 {
		id := fmt.Sprint("jti:race-", round)
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				seen, err := servers[i%len(servers)].SeenIdentityToken(ctx, id, base.Add(time.Hour), base)
				if err != nil {
					t.Error(err)
					return
				}
				if !seen {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if got := fresh.Load(); got != 1 {
			t.Fatalf("round %d: %d of %d concurrent calls over %d servers saw the id as new; want exactly 1", round, got, workers, len(servers))
		}
	}
}
