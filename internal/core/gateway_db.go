package core

import (
	"context"

	"github.com/tokenward/tokenward"
)

// DBGateway enables database gateway routes (docs/gateway-db.md): their
// management through the API, and the opening of a session by
// internal/pgproxy. Set Core.DBGateway to enable them; without it every
// route operation is EUNAVAILABLE.
type DBGateway struct {
	Store tokenward.DBRouteStore
}

func (c *Core) dbRoutes() (tokenward.DBRouteStore, error) {
	if c.DBGateway == nil || c.DBGateway.Store == nil {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "the database gateway is not enabled on this server")
	}
	return c.DBGateway.Store, nil
}

// requireRouteAdmin allows managing a route only to a token that
// administers the route's secret: a route lets its users sign in with the
// secret, so it never gives more than its manager holds. Just-in-time
// tokens never manage routes.
func requireRouteAdmin(tok *tokenward.Token, r *tokenward.DBRoute) error {
	if tok.Kind == tokenward.TokenJIT {
		return tokenward.Errorf(tokenward.EFORBIDDEN, "just-in-time tokens cannot manage gateway routes")
	}
	return require(tok, tokenward.ActionAdmin, r.Project, r.Env, r.Secret)
}

// CreateDBRoute validates and stores a new route made by tok, who must
// administer its secret.
func (c *Core) CreateDBRoute(ctx context.Context, tok *tokenward.Token, r *tokenward.DBRoute) (*tokenward.DBRoute, error) {
	s, err := c.dbRoutes()
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, tokenward.Errorf(tokenward.EINVALID, "no route")
	}
	nr := *r
	if err := nr.Validate(); err != nil {
		return nil, err
	}
	if err := requireRouteAdmin(tok, &nr); err != nil {
		return nil, err
	}
	if err := c.routeNameFree(ctx, nr.Name, true); err != nil {
		return nil, err
	}
	nr.CreatedAt, nr.CreatedBy = c.Now().UTC(), tok.ID
	if err := s.CreateDBRoute(ctx, &nr); err != nil {
		return nil, err
	}
	undo := func(ctx context.Context, _ string) error { return s.DeleteDBRoute(ctx, &nr) }
	if err := c.routeNameStillFree(ctx, nr.Name, true, undo); err != nil {
		return nil, err
	}
	return &nr, nil
}

// DBRoutes lists the routes tok administers.
func (c *Core) DBRoutes(ctx context.Context, tok *tokenward.Token) ([]*tokenward.DBRoute, error) {
	s, err := c.dbRoutes()
	if err != nil {
		return nil, err
	}
	if tok.Kind == tokenward.TokenJIT {
		return nil, tokenward.Errorf(tokenward.EFORBIDDEN, "just-in-time tokens cannot manage gateway routes")
	}
	all, err := s.DBRoutes(ctx)
	if err != nil {
		return nil, err
	}
	return filter(all, func(r *tokenward.DBRoute) bool { return requireRouteAdmin(tok, r) == nil }), nil
}

// DBRoute returns one route tok administers.
func (c *Core) DBRoute(ctx context.Context, tok *tokenward.Token, name string) (*tokenward.DBRoute, error) {
	s, err := c.dbRoutes()
	if err != nil {
		return nil, err
	}
	if err := tokenward.ValidateRouteName(name); err != nil {
		return nil, err
	}
	r, err := s.DBRoute(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := requireRouteAdmin(tok, r); err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteDBRoute deletes a route tok administers. Sessions open through it
// live on until their clients leave; new ones are refused. The route
// deleted is the one checked: ECONFLICT if it changed in between
// (replaced by another request or server).
func (c *Core) DeleteDBRoute(ctx context.Context, tok *tokenward.Token, name string) (*tokenward.DBRoute, error) {
	s, err := c.dbRoutes()
	if err != nil {
		return nil, err
	}
	r, err := c.DBRoute(ctx, tok, name)
	if err != nil {
		return nil, err
	}
	if err := s.DeleteDBRoute(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// RecheckDBRoute says whether token id may still use route, for the
// database gateway's open sessions (pgproxy.Rechecker): nil, EUNAUTHORIZED
// when it is revoked (or suspended), expired or gone, EFORBIDDEN when it
// no longer holds gateway:route. It reads the token from the store, so a
// revocation on any server counts.
func (c *Core) RecheckDBRoute(ctx context.Context, id, route string) error {
	tok, err := c.Store.Token(ctx, id)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return tokenward.Errorf(tokenward.EUNAUTHORIZED, "token %s no longer exists", tokenward.Printable(id))
	}
	if err != nil {
		return err
	}
	if err := unusable(tok, c.Now()); err != nil {
		return err
	}
	if !tok.Grants.Allows(tokenward.ActionGateway, "", "", route) {
		return tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: gateway:%s", route)
	}
	return nil
}

// OpenDBRoute authenticates the token raw presented by a database client at
// ip for route, checks it holds gateway:<route>, and returns the token, the
// route and the current value of the route's secret (the upstream's
// connection URL), which only the gateway sees. The grant is checked before
// the route is looked up, so a token without it learns nothing about which
// routes exist. Errors never hold raw or the value: EUNAUTHORIZED,
// EFORBIDDEN, ENOTFOUND. With an error the token is still returned when it
// is known, for the audit entry: for a revoked or expired one, only its ID,
// Name, Kind and CI (PresentedToken), which authorize nothing.
func (c *Core) OpenDBRoute(ctx context.Context, route, raw, ip string) (*tokenward.Token, *tokenward.DBRoute, []byte, error) {
	s, err := c.dbRoutes()
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := c.Authenticate(ctx, raw, ip)
	if err != nil {
		who, _ := PresentedToken(err)
		return who, nil, nil, err
	}
	if err := tokenward.ValidateRouteName(route); err != nil {
		return tok, nil, nil, err
	}
	if !tok.Grants.Allows(tokenward.ActionGateway, "", "", route) {
		return tok, nil, nil, tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: gateway:%s", route)
	}
	r, err := s.DBRoute(ctx, route)
	if err != nil {
		return tok, nil, nil, err
	}
	_, v, err := c.Store.CurrentSecret(ctx, r.Project, r.Env, r.Secret)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return tok, r, nil, tokenward.Errorf(tokenward.ENOTFOUND, "route %s: its secret %s does not exist", r.Name, r.SecretPath())
	}
	if err != nil {
		return tok, r, nil, err
	}
	value, err := c.openValue(ctx, r.Project, r.Env, r.Secret, v.Version, v.Ciphertext)
	if err != nil {
		return tok, r, nil, err
	}
	return tok, r, value, nil
}
