package core_test

import (
	"context"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// racyDBRoutes is a database route store in which, just before a route is
// stored, another server stores a route of the other kind under the same
// name (the window between CreateDBRoute's name check and its insert).
type racyDBRoutes struct {
	tokenward.DBRouteStore
	before func()
}

func (s racyDBRoutes) CreateDBRoute(ctx context.Context, r *tokenward.DBRoute) error {
	s.before()
	return s.DBRouteStore.CreateDBRoute(ctx, r)
}

// racyStore is the same for HTTP routes.
type racyStore struct {
	*sqlite.DB
	before func()
}

func (s racyStore) CreateGatewayRoute(ctx context.Context, r *tokenward.GatewayRoute) error {
	s.before()
	return s.DB.CreateGatewayRoute(ctx, r)
}

func httpRoute(name string) *tokenward.GatewayRoute {
	return &tokenward.GatewayRoute{Name: name, Upstream: "https://api.example", Secret: "payments/prod/API_KEY",
		Inject: "header:Authorization=Bearer {{value}}", Allow: []string{"GET /**"}}
}

func dbRoute(name string) *tokenward.DBRoute {
	return &tokenward.DBRoute{Name: name, Upstream: "db.internal:5432", Project: "payments", Env: "prod", Secret: "DATABASE_URL"}
}

// TestGatewayRouteNameRaceDB: an HTTP route named "shared" is stored (on
// another server) between CreateDBRoute's check of the name and its
// insert. Both routes would then exist and gateway:shared would name both;
// the database route must be refused (409) and not left stored.
func TestGatewayRouteNameRaceDB(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	f.core.DBGateway = &core.DBGateway{Store: racyDBRoutes{DBRouteStore: f.db, before: func() {
		if err := f.db.CreateGatewayRoute(ctx, httpRoute("shared")); err != nil {
			t.Fatal(err)
		}
	}}}
	_, err := f.core.CreateDBRoute(ctx, f.admin, dbRoute("shared"))
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Errorf("CreateDBRoute while an HTTP route of the name appears: got %v; want ECONFLICT", err)
	}
	if _, err := f.db.DBRoute(ctx, "shared"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("both kinds of route named shared are stored (DBRoute: %v): gateway:shared names both", err)
	}
}

// TestGatewayRouteNameRaceHTTP is the same the other way round.
func TestGatewayRouteNameRaceHTTP(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	f.core.DBGateway = &core.DBGateway{Store: f.db}
	f.core.Store = racyStore{DB: f.db, before: func() {
		if err := f.db.CreateDBRoute(ctx, dbRoute("shared")); err != nil {
			t.Fatal(err)
		}
	}}
	_, err := f.core.CreateGatewayRoute(ctx, f.admin, httpRoute("shared"))
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Errorf("CreateGatewayRoute while a database route of the name appears: got %v; want ECONFLICT", err)
	}
	if _, err := f.db.GatewayRoute(ctx, "shared"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("both kinds of route named shared are stored (GatewayRoute: %v): gateway:shared names both", err)
	}
}

// TestGatewayRouteChecks: checks that hold already (kept as regression
// tests): a basic-auth route needs admin over its user secret too; a
// database session's recheck refuses a token whose gateway grant was
// narrowed away.
func TestGatewayRouteChecks(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	f.core.DBGateway = &core.DBGateway{Store: f.db}
	mint := func(name string, grants ...string) *tokenward.Token {
		t.Helper()
		tok, _, err := f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: name, Grants: mustGrants(grants...)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	one := mint("one-secret", "admin:payments/prod/PASSWORD")
	basic := &tokenward.GatewayRoute{Name: "registry", Upstream: "https://registry.example", Secret: "payments/prod/PASSWORD",
		UserSecret: "payments/dev/USER", Inject: "basic", Allow: []string{"GET /v2/**"}}
	if _, err := f.core.CreateGatewayRoute(ctx, one, basic); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
		t.Errorf("route injecting a user secret the caller does not administer: got %v; want EFORBIDDEN", err)
	}

	if _, err := f.core.CreateDBRoute(ctx, f.admin, dbRoute("pgprod")); err != nil {
		t.Fatal(err)
	}
	user := mint("user", "gateway:pg*", "read:payments/dev/*")
	if err := f.core.RecheckDBRoute(ctx, user.ID, "pgprod"); err != nil {
		t.Fatalf("recheck of a granted token: %v", err)
	}
	if err := f.db.ReplaceTokenGrants(ctx, user.ID, mustGrants("gateway:pgdev", "read:payments/dev/*")); err != nil {
		t.Fatal(err)
	}
	if err := f.core.RecheckDBRoute(ctx, user.ID, "pgprod"); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
		t.Errorf("recheck after the grant was narrowed to gateway:pgdev: got %v; want EFORBIDDEN", err)
	}
}
