package client

import (
	"context"

	"github.com/tokenward/tokenward/internal/api"
)

func routePath(name string) path { return at("/v1/gateway/routes").name(api.KindRoute, name) }

// CreateGatewayRoute creates a gateway route and returns it. It needs
// admin over every secret the route injects.
func (c *Client) CreateGatewayRoute(ctx context.Context, in api.GatewayRoute) (*api.GatewayRoute, error) {
	in.Allow = nonNil(in.Allow)
	var r api.GatewayRoute
	err := c.do(ctx, "POST", at("/v1/gateway/routes"), in, &r)
	return &r, err
}

// GatewayRoutes lists the routes the caller may use or administers.
func (c *Client) GatewayRoutes(ctx context.Context) ([]*api.GatewayRoute, error) {
	var out api.GatewayRouteList
	err := c.do(ctx, "GET", at("/v1/gateway/routes"), nil, &out)
	return out.Routes, err
}

// GatewayRoute returns one route.
func (c *Client) GatewayRoute(ctx context.Context, name string) (*api.GatewayRoute, error) {
	var r api.GatewayRoute
	err := c.do(ctx, "GET", routePath(name), nil, &r)
	return &r, err
}

// DeleteGatewayRoute deletes a route and returns it.
func (c *Client) DeleteGatewayRoute(ctx context.Context, name string) (*api.GatewayRoute, error) {
	var r api.GatewayRoute
	err := c.do(ctx, "DELETE", routePath(name), nil, &r)
	return &r, err
}
