package httpapi

import (
	"net/http"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// gatewayDBRoutes manage the routes of the database gateway
// (internal/pgproxy serves them on their own listener).
func (s *Server) gatewayDBRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/gateway/db/routes", action: "gateway.db.route.list", handle: s.listDBRoutes},
		{method: "POST", pattern: "/v1/gateway/db/routes", action: "gateway.db.route.create", handle: s.createDBRoute},
		{method: "GET", pattern: "/v1/gateway/db/routes/{name}", action: "gateway.db.route.read", handle: s.getDBRoute},
		{method: "DELETE", pattern: "/v1/gateway/db/routes/{name}", action: "gateway.db.route.delete", handle: s.deleteDBRoute},
	}
}

func (s *Server) listDBRoutes(c *call) (int, any, error) {
	rs, err := s.Core.DBRoutes(c.r.Context(), c.tok)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &api.DBRouteList{Routes: rs}, nil
}

func (s *Server) createDBRoute(c *call) (int, any, error) {
	var req api.CreateDBRouteRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	if tokenward.ValidateRouteName(req.Name) == nil {
		c.resource = "gateway:" + req.Name
	}
	parts := strings.Split(req.Secret, "/")
	if len(parts) != 3 {
		return 0, nil, tokenward.Errorf(tokenward.EINVALID, "secret must be project/env/name")
	}
	r, err := s.Core.CreateDBRoute(c.r.Context(), c.tok, &tokenward.DBRoute{
		Name: req.Name, Upstream: req.Upstream, Project: parts[0], Env: parts[1], Secret: parts[2],
	})
	if err != nil {
		return 0, nil, err
	}
	c.meta = map[string]string{"secret": r.SecretPath(), "upstream": r.Upstream}
	return http.StatusCreated, r, nil
}

// dbRouteName reads {name} and names the audit resource after it when
// valid (an invalid name never reaches the audit log).
func dbRouteName(c *call) string {
	name := c.r.PathValue("name")
	if tokenward.ValidateRouteName(name) == nil {
		c.resource = "gateway:" + name
	}
	return name
}

func (s *Server) getDBRoute(c *call) (int, any, error) {
	r, err := s.Core.DBRoute(c.r.Context(), c.tok, dbRouteName(c))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, r, nil
}

func (s *Server) deleteDBRoute(c *call) (int, any, error) {
	r, err := s.Core.DeleteDBRoute(c.r.Context(), c.tok, dbRouteName(c))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, r, nil
}
