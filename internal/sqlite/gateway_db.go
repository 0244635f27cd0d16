package sqlite

import (
	"context"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// Database gateway routes (tokenward.DBRouteStore).
var _ tokenward.DBRouteStore = (*DB)(nil)

// CreateDBRoute stores a new route; ECONFLICT if the name is taken.
func (db *DB) CreateDBRoute(ctx context.Context, r *tokenward.DBRoute) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO gateway_db_routes (`+sqlrow.DBRouteCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		sqlrow.DBRouteArgs(r)...)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "route %s exists already", r.Name)
	}
	return err
}

// DBRoute returns one route, or ENOTFOUND.
func (db *DB) DBRoute(ctx context.Context, name string) (*tokenward.DBRoute, error) {
	r, err := sqlrow.ScanDBRoute(db.read.QueryRowContext(ctx, `SELECT `+sqlrow.DBRouteCols+` FROM gateway_db_routes WHERE name = ?`, name))
	return found(r, err, "route %s not found", name)
}

// DBRoutes lists every route, by name.
func (db *DB) DBRoutes(ctx context.Context) ([]*tokenward.DBRoute, error) {
	return queryAll(ctx, db.read, sqlrow.ScanDBRoute, `SELECT `+sqlrow.DBRouteCols+` FROM gateway_db_routes ORDER BY name`)
}

// DeleteDBRoute removes the route named r.Name if it is stored as r;
// ENOTFOUND if none, ECONFLICT if another is stored under the name.
func (db *DB) DeleteDBRoute(ctx context.Context, r *tokenward.DBRoute) error {
	res, err := db.write.ExecContext(ctx, sqlrow.DeleteDBRouteAsStoredSQL, sqlrow.DBRouteArgs(r)...)
	return sqlrow.DeletedAsStored(changedRow(res, err, "route %s not found", r.Name), r.Name,
		func() error { _, err := db.DBRoute(ctx, r.Name); return err })
}
