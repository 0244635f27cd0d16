package api

import "github.com/tokenward/tokenward"

// KindDBRoute is a database gateway route's name in a request path.
const KindDBRoute Kind = "route name"

// CreateDBRouteRequest is the body of POST /v1/gateway/db/routes. Secret
// is project/env/name of a secret holding a postgres:// URL.
type CreateDBRouteRequest struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream"` // host:port
	Secret   string `json:"secret"`
}

// DBRouteList is the answer of GET /v1/gateway/db/routes.
type DBRouteList struct {
	Routes []*tokenward.DBRoute `json:"routes"`
}
