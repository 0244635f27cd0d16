package tokenward

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"
)

// ActionGateway allows using a gateway route: "gateway:<route>" lets a
// token through the route of that name (a glob such as "gateway:pg*"
// covers several). It is not among Actions: a gateway grant names a
// route, not a secret path.
const ActionGateway Action = "gateway"

// parseGatewayGrant parses the route of "gateway:<route>", where route is
// a route name or a glob over route names.
func parseGatewayGrant(s, route string) (Grant, error) {
	lit := strings.ReplaceAll(route, "*", "")
	if route != "*" && (lit == "" || strings.Contains(route, "**") || ValidateRouteName(strings.ReplaceAll(route, "*", "a")) != nil) {
		return Grant{}, Errorf(EINVALID, "grant %q: want gateway:ROUTE (a route name or glob)", Printable(s))
	}
	// The route is the grant's Name; Project and Env stay empty, so a
	// gateway grant reaches into no project and covers no secret.
	return Grant{Action: ActionGateway, Name: route}, nil
}

// DBRoute is a database gateway route: clients that connect to the
// gateway with a token holding gateway:<Name> are relayed to Upstream,
// signed in with the credentials of the current version of the secret
// Project/Env/Secret (a postgres:// URL whose host the route's Upstream
// replaces).
type DBRoute struct {
	Name      string    `json:"name"`
	Upstream  string    `json:"upstream"` // host:port
	Project   string    `json:"project"`
	Env       string    `json:"env"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// SecretPath is the route's secret as project/env/name.
func (r *DBRoute) SecretPath() string { return r.Project + "/" + r.Env + "/" + r.Secret }

// Validate checks the route's name, upstream address and secret path.
func (r *DBRoute) Validate() error {
	if err := ValidateRouteName(r.Name); err != nil {
		return err
	}
	if err := ValidateUpstream(r.Upstream); err != nil {
		return err
	}
	if err := ValidateProjectName(r.Project); err != nil {
		return err
	}
	if err := ValidateEnvName(r.Env); err != nil {
		return err
	}
	return ValidateSecretName(r.Secret)
}

// ValidateUpstream checks that s is host:port with a port from 1 to 65535
// and a host of printable characters without spaces.
func ValidateUpstream(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || len(s) > 255 {
		return Errorf(EINVALID, "upstream %q: want host:port, e.g. db.internal:5432", Printable(s))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Errorf(EINVALID, "upstream %q: the port must be from 1 to 65535", Printable(s))
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '@' || c == '?' || c == '#' {
			return Errorf(EINVALID, "upstream %q: bad host", Printable(s))
		}
	}
	return nil
}

// DBRouteStore keeps database gateway routes. Errors are *Error with
// ENOTFOUND or ECONFLICT where a caller branches on them.
// internal/storetest.RunDBRoutes is the contract.
type DBRouteStore interface {
	// CreateDBRoute stores r; ECONFLICT if its name is taken.
	CreateDBRoute(ctx context.Context, r *DBRoute) error
	// DBRoute returns one route, or ENOTFOUND.
	DBRoute(ctx context.Context, name string) (*DBRoute, error)
	// DBRoutes lists every route, by name.
	DBRoutes(ctx context.Context) ([]*DBRoute, error)
	// DeleteDBRoute removes the route named r.Name if it is stored as r
	// (every field, as DBRoute returned it or CreateDBRoute stored it):
	// ENOTFOUND if none, ECONFLICT if the stored one differs (changed, or
	// deleted and made again, since r was read), so that a delete checked
	// against r never removes another route.
	DeleteDBRoute(ctx context.Context, r *DBRoute) error
}
