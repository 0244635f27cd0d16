package postgres_test

import (
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/gateway"
)

// TestGatewayRoutesReachOtherServers: a route B has cached is changed on
// A — deleted and made again with another upstream, then deleted — and B
// serves what A did within a second (the 0800 trigger's notification;
// without it B would trust its cache for MaxStaleness, 10 s).
func TestGatewayRoutesReachOtherServers(t *testing.T) {
	ctx := t.Context()
	ss := mustServers(t, 2)
	a, b := ss[0], ss[1]
	if _, err := a.core.CreateProject(ctx, a.admin, "acme", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	route := func(upstream string) *tokenward.GatewayRoute {
		return &tokenward.GatewayRoute{Name: "github", Upstream: upstream, Secret: "acme/prod/TOKEN", Inject: "query:k", Allow: []string{"GET /**"}}
	}
	if _, err := a.core.CreateGatewayRoute(ctx, a.admin, route("https://one.example")); err != nil {
		t.Fatal(err)
	}
	g := &gateway.Gateway{Routes: b.db, Secrets: b.core.GatewaySecrets(), Clock: b.db}
	t.Cleanup(g.Close)
	upstreamOnB := func() string {
		r, err := g.Route(ctx, "github")
		if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return r.Upstream
	}
	if got := upstreamOnB(); got != "https://one.example" {
		t.Fatalf("B: got %s; want https://one.example", got)
	}
	if _, err := a.core.DeleteGatewayRoute(ctx, a.admin, "github"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.core.CreateGatewayRoute(ctx, a.admin, route("https://two.example")); err != nil {
		t.Fatal(err)
	}
	within(t, crossServer, "B serves A's new route", func() bool { return upstreamOnB() == "https://two.example" })
	if _, err := a.core.DeleteGatewayRoute(ctx, a.admin, "github"); err != nil {
		t.Fatal(err)
	}
	within(t, crossServer, "B stops serving A's deleted route", func() bool { return upstreamOnB() == "none" })
}
