package postgres

import (
	"context"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// Database gateway routes (tokenward.DBRouteStore).
var _ tokenward.DBRouteStore = (*DB)(nil)

// CreateDBRoute stores a new route; ECONFLICT if the name is taken.
func (db *DB) CreateDBRoute(ctx context.Context, r *tokenward.DBRoute) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO gateway_db_routes (`+sqlrow.DBRouteCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		sqlrow.DBRouteArgs(r)...)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "route %s exists already", r.Name)
	}
	return dbError("create route", err)
}

// DBRoute returns one route, or ENOTFOUND.
func (db *DB) DBRoute(ctx context.Context, name string) (*tokenward.DBRoute, error) {
	r, err := sqlrow.ScanDBRoute(db.pool.QueryRow(ctx, `SELECT `+sqlrow.DBRouteCols+` FROM gateway_db_routes WHERE name = $1`, name))
	r, err = found(r, err, "route %s not found", name)
	return r, dbError("route", err)
}

// DBRoutes lists every route, by name.
func (db *DB) DBRoutes(ctx context.Context) ([]*tokenward.DBRoute, error) {
	out, err := queryAll(ctx, db.pool, sqlrow.ScanDBRoute, `SELECT `+sqlrow.DBRouteCols+` FROM gateway_db_routes ORDER BY name`)
	return out, dbError("routes", err)
}

// DeleteDBRoute removes the route named r.Name if it is stored as r;
// ENOTFOUND if none, ECONFLICT if another is stored under the name.
func (db *DB) DeleteDBRoute(ctx context.Context, r *tokenward.DBRoute) error {
	tag, err := db.pool.Exec(ctx, dollars(sqlrow.DeleteDBRouteAsStoredSQL), sqlrow.DBRouteArgs(r)...)
	return dbError("delete route", sqlrow.DeletedAsStored(changedRow(tag, err, "route %s not found", r.Name), r.Name,
		func() error { _, err := db.DBRoute(ctx, r.Name); return err }))
}
