package core_test

import (
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
)

// TestDBRoutes: a route is managed by who administers its secret (never a
// JIT token), and OpenDBRoute gives the current value only to a token
// holding gateway:<route>, checking the grant before the route so a
// missing route and a forbidden one look alike.
func TestDBRoutes(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	f.put(t, "prod", "DATABASE_URL", "postgres://app:v1@db/app")
	f.put(t, "prod", "DATABASE_URL", "postgres://app:v2@db/app")
	mint := func(name string, kind tokenward.TokenKind, grants ...string) (*tokenward.Token, string) {
		t.Helper()
		tok, secret, err := f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: name, Kind: kind, Grants: mustGrants(grants...)})
		if err != nil {
			t.Fatal(err)
		}
		return tok, secret
	}
	route := &tokenward.DBRoute{Name: "pgprod", Upstream: "db.internal:5432", Project: "payments", Env: "prod", Secret: "DATABASE_URL"}
	if _, err := f.core.CreateDBRoute(ctx, f.admin, route); tokenward.ErrorCode(err) != tokenward.EUNAVAILABLE {
		t.Fatalf("without DBGateway: got %v; want EUNAVAILABLE", err)
	}
	f.core.DBGateway = &core.DBGateway{Store: f.db}

	envAdmin, _ := mint("env-admin", tokenward.TokenService, "admin:payments/prod/*")
	devAdmin, _ := mint("dev-admin", tokenward.TokenService, "admin:payments/dev/*")
	for _, tt := range []struct {
		name string
		tok  *tokenward.Token
		r    tokenward.DBRoute
		want string
	}{
		{"no admin over the secret", devAdmin, *route, tokenward.EFORBIDDEN},
		{"bad upstream", envAdmin, tokenward.DBRoute{Name: "pgprod", Upstream: "db.internal", Project: "payments", Env: "prod", Secret: "DATABASE_URL"}, tokenward.EINVALID},
		{"bad name", envAdmin, tokenward.DBRoute{Name: "PG", Upstream: "db:5432", Project: "payments", Env: "prod", Secret: "DATABASE_URL"}, tokenward.EINVALID},
		{"allowed", envAdmin, *route, ""},
		{"taken", f.admin, *route, tokenward.ECONFLICT},
	} {
		_, err := f.core.CreateDBRoute(ctx, tt.tok, &tt.r)
		if got := tokenward.ErrorCode(err); got != tt.want {
			t.Errorf("%s: got %v; want code %q", tt.name, err, tt.want)
		}
	}
	if rs, err := f.core.DBRoutes(ctx, devAdmin); err != nil || len(rs) != 0 {
		t.Errorf("routes for an admin of another env: got %v, %v; want none", rs, err)
	}
	if rs, err := f.core.DBRoutes(ctx, envAdmin); err != nil || len(rs) != 1 || rs[0].CreatedBy != envAdmin.ID {
		t.Errorf("routes for the env admin: got %v, %v; want pgprod made by it", rs, err)
	}

	user, userSecret := mint("user", tokenward.TokenService, "gateway:pgprod")
	_, globSecret := mint("glob", tokenward.TokenService, "gateway:pg*")
	_, readerSecret := mint("reader", tokenward.TokenService, "read:payments/prod/*")
	for _, tt := range []struct {
		name, route, token string
		want               string
	}{
		{"granted", "pgprod", userSecret, ""},
		{"glob", "pgprod", globSecret, ""},
		{"reader of the secret", "pgprod", readerSecret, tokenward.EFORBIDDEN},
		{"not granted, no such route", "pgnone", userSecret, tokenward.EFORBIDDEN},
		{"granted, no such route", "pgnone", globSecret, tokenward.ENOTFOUND},
		{"not a token", "pgprod", "hunter2", tokenward.EUNAUTHORIZED},
	} {
		tok, r, value, err := f.core.OpenDBRoute(ctx, tt.route, tt.token, "127.0.0.1")
		if got := tokenward.ErrorCode(err); got != tt.want {
			t.Errorf("%s: got %v; want code %q", tt.name, err, tt.want)
			continue
		}
		if err != nil {
			if value != nil {
				t.Errorf("%s: got a value with an error", tt.name)
			}
			continue
		}
		if string(value) != "postgres://app:v2@db/app" || r.Name != "pgprod" || tok == nil {
			t.Errorf("%s: got %q for %v; want the current version for pgprod", tt.name, value, r)
		}
	}
	if _, err := f.core.RevokeToken(ctx, f.admin, user.ID); err != nil {
		t.Fatal(err)
	}
	who, _, _, err := f.core.OpenDBRoute(ctx, "pgprod", userSecret, "127.0.0.1")
	if tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED || who == nil || who.ID != user.ID || len(who.Grants) != 0 {
		t.Fatalf("a revoked token: got %+v, %v; want EUNAUTHORIZED naming %s without grants", who, err, user.ID)
	}
	if _, err := f.core.DeleteDBRoute(ctx, devAdmin, "pgprod"); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
		t.Errorf("delete by another env's admin: got %v; want EFORBIDDEN", err)
	}
	if _, err := f.core.DeleteDBRoute(ctx, envAdmin, "pgprod"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.core.OpenDBRoute(ctx, "pgprod", globSecret, "127.0.0.1"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("a deleted route: got %v; want ENOTFOUND", err)
	}
}
