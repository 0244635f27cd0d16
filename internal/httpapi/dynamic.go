package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/dynamic"
)

// dynamicRoutes serve dynamic sources (admin on the source to write,
// read to see and to lease) and leases (their token's, or under a revoke
// grant; others are not found). docs/dynamic.md.
func (s *Server) dynamicRoutes() []route {
	const sp = "{project}/{env}/{name}"
	return []route{
		{method: "GET", pattern: "/v1/dynamic", action: "dynamic.list", handle: s.listDynamicSources},
		{method: "PUT", pattern: "/v1/dynamic/" + sp, action: "dynamic.write", handle: s.putDynamicSource},
		{method: "GET", pattern: "/v1/dynamic/" + sp, action: "dynamic.read", handle: s.getDynamicSource},
		{method: "DELETE", pattern: "/v1/dynamic/" + sp, action: "dynamic.delete", handle: s.deleteDynamicSource},
		{method: "POST", pattern: "/v1/dynamic/" + sp + "/lease", action: "lease.create", handle: s.createLease},
		{method: "GET", pattern: "/v1/leases", action: "lease.list", handle: s.listLeases},
		{method: "POST", pattern: "/v1/leases/revoke", action: "lease.revoke_prefix", handle: s.revokeLeasePrefix},
		{method: "GET", pattern: "/v1/leases/{id}", action: "lease.read", handle: s.getLease},
		{method: "POST", pattern: "/v1/leases/{id}/renew", action: "lease.renew", handle: s.renewLease},
		{method: "POST", pattern: "/v1/leases/{id}/revoke", action: "lease.revoke", handle: s.revokeLease},
	}
}

func (s *Server) dynamic() (*dynamic.Engine, error) {
	if s.Dynamic == nil {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "dynamic sources are not enabled on this server")
	}
	return s.Dynamic, nil
}

func sourceView(src *tokenward.DynamicSource) *api.DynamicSource {
	return &api.DynamicSource{Path: src.Path(), Kind: src.Kind, Config: src.Config, TTL: src.TTL.String(), MaxTTL: src.MaxTTL.String(),
		MaxLeases: src.MaxLeases, CreatedBy: src.CreatedBy, CreatedAt: src.CreatedAt, UpdatedAt: src.UpdatedAt}
}

func parseLeaseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, tokenward.Errorf(tokenward.EINVALID, "%s: want a positive duration like 15m or 2h", field)
	}
	return d, nil
}

// sourceCall is the start of a route on one source: the engine and the
// source's path (the request's resource).
func (s *Server) sourceCall(c *call) (*dynamic.Engine, string, string, string, error) {
	p, en, n := secretPath(c)
	e, err := s.dynamic()
	return e, p, en, n, err
}

func (s *Server) listDynamicSources(c *call) (int, any, error) {
	e, err := s.dynamic()
	if err != nil {
		return 0, nil, err
	}
	srcs, err := e.Sources(c.r.Context(), c.tok, c.r.URL.Query().Get("prefix"))
	if err != nil {
		return 0, nil, err
	}
	out := &api.DynamicSourceList{Sources: []*api.DynamicSource{}}
	for _, src := range srcs {
		out.Sources = append(out.Sources, sourceView(src))
	}
	return http.StatusOK, out, nil
}

func (s *Server) putDynamicSource(c *call) (int, any, error) {
	e, p, en, n, err := s.sourceCall(c)
	if err != nil {
		return 0, nil, err
	}
	var req api.DynamicSourceRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	src := &tokenward.DynamicSource{Project: p, Env: en, Name: n, Kind: req.Kind, Config: req.Config, MaxLeases: req.MaxLeases}
	if src.TTL, err = parseLeaseDuration("ttl", req.TTL); err != nil {
		return 0, nil, err
	}
	if src.MaxTTL, err = parseLeaseDuration("max_ttl", req.MaxTTL); err != nil {
		return 0, nil, err
	}
	// Audited, refused or not: a source written unchecked is worth a look.
	c.meta = map[string]string{"checked": strconv.FormatBool(!req.SkipCheck)}
	got, err := e.PutSource(c.r.Context(), c.tok, src, req.SkipCheck)
	if err != nil {
		return 0, nil, err
	}
	c.meta["kind"] = got.Kind
	return http.StatusOK, sourceView(got), nil
}

func (s *Server) getDynamicSource(c *call) (int, any, error) {
	e, p, en, n, err := s.sourceCall(c)
	if err != nil {
		return 0, nil, err
	}
	src, err := e.Source(c.r.Context(), c.tok, p, en, n)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sourceView(src), nil
}

func (s *Server) deleteDynamicSource(c *call) (int, any, error) {
	e, p, en, n, err := s.sourceCall(c)
	if err != nil {
		return 0, nil, err
	}
	if err := e.DeleteSource(c.r.Context(), c.tok, p, en, n); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"deleted": p + "/" + en + "/" + n}, nil
}

// leaseMeta are a lease's facts for its audit entry: never the credential.
func leaseMeta(l *tokenward.Lease) map[string]string {
	m := map[string]string{"lease": l.ID, "role": l.Role, "state": string(l.State), "expires_at": l.ExpiresAt.Format(time.RFC3339)}
	if l.Job != "" {
		m["job"] = l.Job
	}
	return m
}

func (s *Server) createLease(c *call) (int, any, error) {
	e, p, en, n, err := s.sourceCall(c)
	if err != nil {
		return 0, nil, err
	}
	l, cred, err := e.Lease(c.r.Context(), c.tok, p, en, n)
	if err != nil {
		return 0, nil, err
	}
	c.meta = leaseMeta(l)
	return http.StatusCreated, &api.LeaseResponse{Lease: l, User: cred.User, Password: cred.Password, Value: cred.Value}, nil
}

func (s *Server) listLeases(c *call) (int, any, error) {
	e, err := s.dynamic()
	if err != nil {
		return 0, nil, err
	}
	q := c.r.URL.Query()
	f := tokenward.LeaseFilter{Prefix: q.Get("prefix"), TokenID: q.Get("token")}
	if v := q.Get("live"); v != "" {
		if f.Live, err = strconv.ParseBool(v); err != nil {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "live must be true or false")
		}
	}
	ls, err := e.Leases(c.r.Context(), c.tok, f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &api.LeaseList{Leases: ls}, nil
}

// leaseCall is the start of a route on one lease: its id (the resource
// until the lease's source is known) and the engine.
func (s *Server) leaseCall(c *call) (string, *dynamic.Engine, error) {
	id := c.r.PathValue("id")
	c.resource = "lease:" + id
	e, err := s.dynamic()
	return id, e, err
}

func (s *Server) getLease(c *call) (int, any, error) {
	id, e, err := s.leaseCall(c)
	if err != nil {
		return 0, nil, err
	}
	l, err := e.LeaseInfo(c.r.Context(), c.tok, id)
	if err != nil {
		return 0, nil, err
	}
	c.resource = l.Source()
	return http.StatusOK, l, nil
}

func (s *Server) renewLease(c *call) (int, any, error) {
	id, e, err := s.leaseCall(c)
	if err != nil {
		return 0, nil, err
	}
	var req api.RenewLeaseRequest
	if c.r.ContentLength != 0 {
		if err := decode(c.r, &req); err != nil {
			return 0, nil, err
		}
	}
	inc, err := parseLeaseDuration("increment", req.Increment)
	if err != nil {
		return 0, nil, err
	}
	l, warnings, err := e.Renew(c.r.Context(), c.tok, id, inc)
	if err != nil {
		return 0, nil, err
	}
	c.resource, c.meta = l.Source(), leaseMeta(l)
	if len(warnings) > 0 {
		c.meta["capped"] = "max_ttl"
	}
	return http.StatusOK, &api.RenewedLease{Lease: l, Warnings: warnings}, nil
}

func (s *Server) revokeLease(c *call) (int, any, error) {
	id, e, err := s.leaseCall(c)
	if err != nil {
		return 0, nil, err
	}
	l, err := e.Revoke(c.r.Context(), c.tok, id)
	if err != nil {
		return 0, nil, err
	}
	c.resource, c.meta = l.Source(), leaseMeta(l)
	return http.StatusOK, l, nil
}

func (s *Server) revokeLeasePrefix(c *call) (int, any, error) {
	e, err := s.dynamic()
	if err != nil {
		return 0, nil, err
	}
	var req api.RevokeLeasesRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	c.resource = req.Prefix
	ls, err := e.RevokePrefix(c.r.Context(), c.tok, req.Prefix)
	if err != nil {
		return 0, nil, err
	}
	c.meta = map[string]string{"leases": strconv.Itoa(len(ls)), "revoked": strconv.Itoa(tokenward.RevokedLeases(ls))}
	return http.StatusOK, &api.LeaseList{Leases: ls}, nil
}
