package client

import (
	"context"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// CreateDBRoute creates a database gateway route. It needs admin over the
// route's secret; ECONFLICT if the name is taken.
func (c *Client) CreateDBRoute(ctx context.Context, in api.CreateDBRouteRequest) (*tokenward.DBRoute, error) {
	var r tokenward.DBRoute
	err := c.do(ctx, "POST", at("/v1/gateway/db/routes"), in, &r)
	return &r, err
}

// DBRoutes lists the database routes the caller administers.
func (c *Client) DBRoutes(ctx context.Context) ([]*tokenward.DBRoute, error) {
	var out api.DBRouteList
	err := c.do(ctx, "GET", at("/v1/gateway/db/routes"), nil, &out)
	return out.Routes, err
}

func dbRoutePath(name string) path { return at("/v1/gateway/db/routes").name(api.KindDBRoute, name) }

// DBRoute returns one database route.
func (c *Client) DBRoute(ctx context.Context, name string) (*tokenward.DBRoute, error) {
	var r tokenward.DBRoute
	err := c.do(ctx, "GET", dbRoutePath(name), nil, &r)
	return &r, err
}

// DeleteDBRoute deletes a database route and returns it.
func (c *Client) DeleteDBRoute(ctx context.Context, name string) (*tokenward.DBRoute, error) {
	var r tokenward.DBRoute
	err := c.do(ctx, "DELETE", dbRoutePath(name), nil, &r)
	return &r, err
}
