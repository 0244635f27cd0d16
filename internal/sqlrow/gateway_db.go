package sqlrow

import "github.com/tokenward/tokenward"

// DBRouteCols are the columns of gateway_db_routes, in the order
// ScanDBRoute reads them.
const DBRouteCols = `name, upstream, project, env, secret, created_at, created_by`

// ScanDBRoute reads one row of DBRouteCols.
func ScanDBRoute(r Row) (*tokenward.DBRoute, error) {
	rt := &tokenward.DBRoute{}
	return rt, r.Scan(&rt.Name, &rt.Upstream, &rt.Project, &rt.Env, &rt.Secret, TimeCol(&rt.CreatedAt), &rt.CreatedBy)
}
