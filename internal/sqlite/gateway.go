package sqlite

import (
	"context"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// The gateway's routes (tokenward.GatewayRouteStore).
var _ tokenward.GatewayRouteStore = (*DB)(nil)

// CreateGatewayRoute stores r; ECONFLICT if its name is taken.
func (db *DB) CreateGatewayRoute(ctx context.Context, r *tokenward.GatewayRoute) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO gateway_routes (`+sqlrow.GatewayRouteCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sqlrow.GatewayRouteArgs(r)...)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "route %s exists already", r.Name)
	}
	return err
}

// GatewayRoute returns one route, or ENOTFOUND.
func (db *DB) GatewayRoute(ctx context.Context, name string) (*tokenward.GatewayRoute, error) {
	r, err := sqlrow.ScanGatewayRoute(db.read.QueryRowContext(ctx, `SELECT `+sqlrow.GatewayRouteCols+` FROM gateway_routes WHERE name = ?`, name))
	return found(r, err, "route %s not found", name)
}

// GatewayRoutes lists every route, by name.
func (db *DB) GatewayRoutes(ctx context.Context) ([]*tokenward.GatewayRoute, error) {
	return queryAll(ctx, db.read, sqlrow.ScanGatewayRoute, `SELECT `+sqlrow.GatewayRouteCols+` FROM gateway_routes ORDER BY name`)
}

// DeleteGatewayRoute removes the route named r.Name if it is stored as r;
// ENOTFOUND if none, ECONFLICT if another is stored under the name.
func (db *DB) DeleteGatewayRoute(ctx context.Context, r *tokenward.GatewayRoute) error {
	res, err := db.write.ExecContext(ctx, sqlrow.DeleteGatewayRouteAsStoredSQL, sqlrow.GatewayRouteArgs(r)...)
	return sqlrow.DeletedAsStored(changedRow(res, err, "route %s not found", r.Name), r.Name,
		func() error { _, err := db.GatewayRoute(ctx, r.Name); return err })
}
