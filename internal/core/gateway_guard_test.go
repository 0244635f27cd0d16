package core_test

import (
	"context"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// replacedRouteStore runs then once, just after the first read of a
// route: another request or server acting between DeleteGatewayRoute's
// check of the caller's right and its delete.
type replacedRouteStore struct {
	*sqlite.DB
	then func()
}

func (s *replacedRouteStore) GatewayRoute(ctx context.Context, name string) (*tokenward.GatewayRoute, error) {
	r, err := s.DB.GatewayRoute(ctx, name)
	if f := s.then; f != nil {
		s.then = nil
		f()
	}
	return r, err
}

// TestRouteDeleteReplacedMeanwhile: the route a caller may delete is
// replaced, between the check and the delete, by one under the same name
// injecting a secret the caller does not administer. The delete must be
// refused (ECONFLICT), and the new route left stored.
func TestRouteDeleteReplacedMeanwhile(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	mine, _, err := f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: "payments-admin", Grants: mustGrants("admin:payments/prod/*")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.CreateGatewayRoute(ctx, mine, httpRoute("api")); err != nil {
		t.Fatal(err)
	}
	store := &replacedRouteStore{DB: f.db}
	f.core.Store = store
	store.then = func() {
		if _, err := f.core.DeleteGatewayRoute(ctx, f.admin, "api"); err != nil {
			t.Fatal(err)
		}
		other := httpRoute("api")
		other.Secret = "billing/prod/ROOT_KEY"
		if _, err := f.core.CreateGatewayRoute(ctx, f.admin, other); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.core.DeleteGatewayRoute(ctx, mine, "api")
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Errorf("delete of a route replaced meanwhile: got %v; want ECONFLICT", err)
	}
	r, err := f.db.GatewayRoute(ctx, "api")
	if err != nil || r.Secret != "billing/prod/ROOT_KEY" {
		t.Errorf("the replacing route: got %+v, %v; want it still stored", r, err)
	}
}

// TestRouteAllowNetsNeedsRootAdmin: a route whose allow_nets opens a
// range the gateway refuses (loopback, private, link-local, the metadata
// address) needs admin:*/*/*, not only admin over its secrets.
func TestRouteAllowNetsNeedsRootAdmin(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	mine, _, err := f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: "payments-admin", Grants: mustGrants("admin:payments/*/*")})
	if err != nil {
		t.Fatal(err)
	}
	for _, nets := range [][]string{{"169.254.169.254/32"}, {"127.0.0.0/8"}, {"10.0.0.0/8"}, {"fe80::/10"}, {"0.0.0.0/0"}, {"203.0.113.0/24", "172.16.0.0/12"}} {
		r := httpRoute("internal")
		r.AllowNets = nets
		if _, err := f.core.CreateGatewayRoute(ctx, mine, r); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
			t.Errorf("allow_nets %v by admin:payments/*/*: got %v; want EFORBIDDEN", nets, err)
		}
	}
	if _, err := f.db.GatewayRoute(ctx, "internal"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("a refused route is stored: %v", err)
	}
	// Without allow_nets the same caller may; with them, admin:*/*/* may.
	if _, err := f.core.CreateGatewayRoute(ctx, mine, httpRoute("public")); err != nil {
		t.Errorf("a route without allow_nets by admin:payments/*/*: %v", err)
	}
	r := httpRoute("internal")
	r.AllowNets = []string{"10.20.0.0/16"}
	if _, err := f.core.CreateGatewayRoute(ctx, f.admin, r); err != nil {
		t.Errorf("allow_nets by admin:*/*/*: %v", err)
	}
}
