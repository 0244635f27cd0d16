package core

import (
	"context"
	"errors"

	"github.com/tokenward/tokenward"
)

// The gateway's routes (internal/gateway serves them). A route injects
// secrets on the server's authority into calls by tokens granted
// "gateway:<route>", so managing one needs admin over every secret it
// injects; seeing one needs that or the route's gateway grant.

func (c *Core) gatewayRoutes() (tokenward.GatewayRouteStore, error) {
	s, ok := c.Store.(tokenward.GatewayRouteStore)
	if !ok {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "this store keeps no gateway routes")
	}
	return s, nil
}

// storedRoute returns the store and the route name, or ENOTFOUND.
func (c *Core) storedRoute(ctx context.Context, name string) (tokenward.GatewayRouteStore, *tokenward.GatewayRoute, error) {
	store, err := c.gatewayRoutes()
	if err != nil {
		return nil, nil, err
	}
	r, err := store.GatewayRoute(ctx, name)
	return store, r, err
}

// requireGatewayRouteAdmin checks tok has admin over every secret r
// injects, and is no just-in-time token (as for database routes).
func requireGatewayRouteAdmin(tok *tokenward.Token, r *tokenward.GatewayRoute) error {
	if tok.Kind == tokenward.TokenJIT {
		return tokenward.Errorf(tokenward.EFORBIDDEN, "just-in-time tokens cannot manage gateway routes")
	}
	for _, p := range r.SecretPaths() {
		project, env, name, err := splitSecretPath(p)
		if err != nil {
			return err
		}
		if err := require(tok, tokenward.ActionAdmin, project, env, name); err != nil {
			return err
		}
	}
	return nil
}

// mayViewRoute: the route's users and its administrators see it.
func mayViewRoute(tok *tokenward.Token, r *tokenward.GatewayRoute) bool {
	return tok.Grants.AllowsRoute(r.Name) || requireGatewayRouteAdmin(tok, r) == nil
}

// CreateGatewayRoute stores r, which the caller has checked
// (gateway.Compile), made by tok.
func (c *Core) CreateGatewayRoute(ctx context.Context, tok *tokenward.Token, r *tokenward.GatewayRoute) (*tokenward.GatewayRoute, error) {
	store, err := c.gatewayRoutes()
	if err != nil {
		return nil, err
	}
	if err := requireGatewayRouteAdmin(tok, r); err != nil {
		return nil, err
	}
	if err := requireAllowNetsAdmin(tok, r); err != nil {
		return nil, err
	}
	if err := c.routeNameFree(ctx, r.Name, false); err != nil {
		return nil, err
	}
	r.CreatedAt, r.CreatedBy = c.Now().UTC(), tok.ID
	if err := store.CreateGatewayRoute(ctx, r); err != nil {
		return nil, err
	}
	undo := func(ctx context.Context, _ string) error { return store.DeleteGatewayRoute(ctx, r) }
	if err := c.routeNameStillFree(ctx, r.Name, false, undo); err != nil {
		return nil, err
	}
	return r, nil
}

// requireAllowNetsAdmin checks that tok administers everything (admin:*/*/*)
// when r opens address ranges to its upstream (AllowNets). The gateway
// refuses only loopback, private, shared, link-local (cloud metadata),
// unspecified and multicast addresses, so every such range does nothing
// but open some of those — the server's own networks and the metadata
// service, which admin over a secret does not make the caller's. Any
// range counts, so that this check cannot fall behind the gateway's list.
func requireAllowNetsAdmin(tok *tokenward.Token, r *tokenward.GatewayRoute) error {
	if len(r.AllowNets) == 0 || isTokenAdmin(tok) {
		return nil
	}
	return tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: admin on */*/* (a route with allow_nets opens networks the gateway refuses by default)")
}

// GatewayRoute returns one route tok may see (EFORBIDDEN otherwise).
func (c *Core) GatewayRoute(ctx context.Context, tok *tokenward.Token, name string) (*tokenward.GatewayRoute, error) {
	_, r, err := c.storedRoute(ctx, name)
	if err != nil {
		return nil, err
	}
	if !mayViewRoute(tok, r) {
		return nil, tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: gateway:%s, or admin on the secrets it injects", name)
	}
	return r, nil
}

// GatewayRoutes lists the routes tok may see.
func (c *Core) GatewayRoutes(ctx context.Context, tok *tokenward.Token) ([]*tokenward.GatewayRoute, error) {
	store, err := c.gatewayRoutes()
	if err != nil {
		return nil, err
	}
	all, err := store.GatewayRoutes(ctx)
	if err != nil {
		return nil, err
	}
	return filter(all, func(r *tokenward.GatewayRoute) bool { return mayViewRoute(tok, r) }), nil
}

// DeleteGatewayRoute removes a route; tok needs admin over its secrets.
// The route deleted is the one checked: ECONFLICT if it changed in
// between (replaced by another request or server).
func (c *Core) DeleteGatewayRoute(ctx context.Context, tok *tokenward.Token, name string) (*tokenward.GatewayRoute, error) {
	store, r, err := c.storedRoute(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := requireGatewayRouteAdmin(tok, r); err != nil {
		return nil, err
	}
	if err := store.DeleteGatewayRoute(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// GatewaySecrets opens the secrets a route injects, on the server's own
// authority: the caller holds the route's gateway grant, which the HTTP
// layer checked, not a read grant. It is a gateway.SecretSource.
type GatewaySecrets struct{ c *Core }

// GatewaySecrets returns the gateway's secret reader.
func (c *Core) GatewaySecrets() GatewaySecrets { return GatewaySecrets{c} }

// GatewaySecret returns the CURRENT value of project/env/NAME.
func (s GatewaySecrets) GatewaySecret(ctx context.Context, p string) ([]byte, error) {
	return s.c.currentValue(ctx, p)
}

// currentValue opens the CURRENT value of the secret at p, checking no
// grant: for the server's own uses (a rotator's admin DSN, a gateway
// route's credential).
func (c *Core) currentValue(ctx context.Context, p string) ([]byte, error) {
	project, env, name, err := splitSecretPath(p)
	if err != nil {
		return nil, err
	}
	_, v, err := c.Store.CurrentSecret(ctx, project, env, name)
	if err != nil {
		return nil, err
	}
	return c.openValue(ctx, project, env, name, v.Version, v.Ciphertext)
}

// routeNameFree refuses a route name the other kind of gateway route
// holds (db: the name of a database route is being made): the grant
// gateway:<route> names a route of either kind, so one name must not
// stand for two routes.
func (c *Core) routeNameFree(ctx context.Context, name string, db bool) error {
	var err error
	switch {
	case db:
		if s, ok := c.Store.(tokenward.GatewayRouteStore); ok {
			_, err = s.GatewayRoute(ctx, name)
		}
	case c.DBGateway != nil && c.DBGateway.Store != nil:
		_, err = c.DBGateway.Store.DBRoute(ctx, name)
	default:
		return nil
	}
	switch tokenward.ErrorCode(err) {
	case tokenward.ENOTFOUND:
		return nil
	case "":
		if db {
			return tokenward.Errorf(tokenward.ECONFLICT, "route %s exists already as an HTTP gateway route (gateway:%s would name both)", name, name)
		}
		return tokenward.Errorf(tokenward.ECONFLICT, "route %s exists already as a database gateway route (gateway:%s would name both)", name, name)
	}
	return err
}

// routeNameStillFree checks again, once the route of name is stored, that
// the other kind holds no route of that name: one may have been stored
// (on another server) between routeNameFree and the insert. If so, the
// route just stored is deleted again and the creation refused, so the
// two never stay stored together (two such creations at once may both be
// refused; neither is left).
func (c *Core) routeNameStillFree(ctx context.Context, name string, db bool, undo func(context.Context, string) error) error {
	err := c.routeNameFree(ctx, name, db)
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		return nil // free, or unknown: as before the insert
	}
	if uerr := undo(context.WithoutCancel(ctx), name); uerr != nil && tokenward.ErrorCode(uerr) != tokenward.ENOTFOUND {
		return errors.Join(err, uerr)
	}
	return err
}
