package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// GatewayStore is what a backend provides for the gateway's routes.
type GatewayStore interface {
	tokenward.GatewayRouteStore
	Close() error
}

func sampleRoute(name string) *tokenward.GatewayRoute {
	return &tokenward.GatewayRoute{ // #nosec G101 -- secret paths and a placeholder template, no credential
		Name:       name,
		Upstream:   "https://api.github.com/base",
		Secret:     "acme/prod/GITHUB_TOKEN",
		UserSecret: "acme/prod/GITHUB_USER",
		Inject:     "header:Authorization=Bearer {{value}}",
		Allow:      []string{"GET /repos/acme/*", "POST /repos/acme/*/issues"},
		Rate:       "10/s",
		AllowNets:  []string{"127.0.0.0/8", "::1/128"},
		CABundle:   "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		Timeout:    30 * time.Second,
		CreatedAt:  base,
		CreatedBy:  "tok_admin",
	}
}

// RunGatewayRoutes runs the gateway route part of the suite: create, read
// back every field, list by name, conflicts, delete (only of the route as
// it was read: a changed one is ECONFLICT and stays), and — for a store
// with a change clock — the clock moving with every change, so route
// caches behind it see changes.
func RunGatewayRoutes(t *testing.T, newStore func(t *testing.T) GatewayStore) {
	s := newStore(t)
	t.Cleanup(func() { s.Close() })
	clock, _ := s.(tokenward.ChangeClock)
	gen := func() uint64 {
		if clock == nil {
			return 0
		}
		g, _ := clock.Generation()
		return g
	}
	moved := func(step string, before uint64) {
		t.Helper()
		if clock != nil && gen() == before {
			t.Errorf("%s: change clock stood still at %d; want it moved", step, before)
		}
	}

	if _, err := s.GatewayRoute(ctx, "github"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Fatalf("missing route: got %v; want ENOTFOUND", err)
	}
	if list, err := s.GatewayRoutes(ctx); err != nil || len(list) != 0 {
		t.Fatalf("no routes: got %v, %v; want none", list, err)
	}
	g0 := gen()
	want := sampleRoute("github")
	must(t, s.CreateGatewayRoute(ctx, want))
	moved("create", g0)
	got, err := s.GatewayRoute(ctx, "github")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if err := s.CreateGatewayRoute(ctx, sampleRoute("github")); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Fatalf("create again: got %v; want ECONFLICT", err)
	}
	bare := &tokenward.GatewayRoute{Name: "api", Upstream: "https://example.com", Secret: "a/b/C", Inject: "basic", Allow: []string{"GET /**"}, CreatedAt: base}
	must(t, s.CreateGatewayRoute(ctx, bare))
	list, err := s.GatewayRoutes(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "api" || list[1].Name != "github" {
		t.Fatalf("list: got %v, %v; want api, github", list, err)
	}
	if !reflect.DeepEqual(list[0], bare) {
		t.Errorf("empty optional fields: got %+v; want %+v", list[0], bare)
	}

	// A delete names the route it checked: one that differs from what is
	// stored (another request or server replaced it since it was read)
	// is refused and the stored one left, whichever field differs.
	for i, change := range []func(r *tokenward.GatewayRoute){
		func(r *tokenward.GatewayRoute) { r.Secret = "other/prod/ROOT_KEY" },
		func(r *tokenward.GatewayRoute) { r.UserSecret = "" },
		func(r *tokenward.GatewayRoute) { r.Upstream = "https://evil.example" },
		func(r *tokenward.GatewayRoute) { r.AllowNets = nil },
		func(r *tokenward.GatewayRoute) { r.Allow = append(r.Allow, "GET /**") },
		func(r *tokenward.GatewayRoute) { r.Timeout++ },
		func(r *tokenward.GatewayRoute) { r.CreatedAt = r.CreatedAt.Add(time.Nanosecond) },
		func(r *tokenward.GatewayRoute) { r.CreatedBy = "tok_other" },
	} {
		stale := sampleRoute("github")
		change(stale)
		if err := s.DeleteGatewayRoute(ctx, stale); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
			t.Errorf("change %d: delete of a route other than the stored one: got %v; want ECONFLICT", i, err)
		}
	}
	if got, err := s.GatewayRoute(ctx, "github"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after refused deletes: got %+v, %v; want %+v", got, err, want)
	}
	g1 := gen()
	must(t, s.DeleteGatewayRoute(ctx, got)) // as read back
	moved("delete", g1)
	if _, err := s.GatewayRoute(ctx, "github"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Fatalf("deleted route: got %v; want ENOTFOUND", err)
	}
	if err := s.DeleteGatewayRoute(ctx, got); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Fatalf("delete again: got %v; want ENOTFOUND", err)
	}
	must(t, s.DeleteGatewayRoute(ctx, bare)) // as created
	if _, err := s.GatewayRoute(ctx, "api"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Fatalf("deleted route api: got %v; want ENOTFOUND", err)
	}
}
