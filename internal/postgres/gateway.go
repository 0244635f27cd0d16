package postgres

import (
	"context"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// The gateway's routes (tokenward.GatewayRouteStore); every change
// notifies the other servers (0800_gateway.sql), whose route caches are
// behind the change clock.
var _ tokenward.GatewayRouteStore = (*DB)(nil)

// CreateGatewayRoute stores r; ECONFLICT if its name is taken.
func (db *DB) CreateGatewayRoute(ctx context.Context, r *tokenward.GatewayRoute) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO gateway_routes (`+sqlrow.GatewayRouteCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		sqlrow.GatewayRouteArgs(r)...)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "route %s exists already", r.Name)
	}
	return dbError("create gateway route", err)
}

// GatewayRoute returns one route, or ENOTFOUND.
func (db *DB) GatewayRoute(ctx context.Context, name string) (*tokenward.GatewayRoute, error) {
	r, err := sqlrow.ScanGatewayRoute(db.pool.QueryRow(ctx, `SELECT `+sqlrow.GatewayRouteCols+` FROM gateway_routes WHERE name = $1`, name))
	r, err = found(r, err, "route %s not found", name)
	return r, dbError("gateway route", err)
}

// GatewayRoutes lists every route, by name.
func (db *DB) GatewayRoutes(ctx context.Context) ([]*tokenward.GatewayRoute, error) {
	out, err := queryAll(ctx, db.pool, sqlrow.ScanGatewayRoute, `SELECT `+sqlrow.GatewayRouteCols+` FROM gateway_routes ORDER BY name`)
	return out, dbError("gateway routes", err)
}

// DeleteGatewayRoute removes the route named r.Name if it is stored as r;
// ENOTFOUND if none, ECONFLICT if another is stored under the name.
func (db *DB) DeleteGatewayRoute(ctx context.Context, r *tokenward.GatewayRoute) error {
	tag, err := db.pool.Exec(ctx, dollars(sqlrow.DeleteGatewayRouteAsStoredSQL), sqlrow.GatewayRouteArgs(r)...)
	return dbError("delete gateway route", sqlrow.DeletedAsStored(changedRow(tag, err, "route %s not found", r.Name), r.Name,
		func() error { _, err := db.GatewayRoute(ctx, r.Name); return err }))
}
