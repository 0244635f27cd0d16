package httpapi

import (
	"net/http"
	"strconv"

	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/rotate"
)

// rotationRoutes serve rotation without downtime: policies, rotate now,
// bulk (incident) rotation, status, history and rollback within grace.
// Every route needs the rotate grant on the secrets it touches.
func (s *Server) rotationRoutes() []route {
	const sp = "{project}/{env}/{name}"
	return []route{
		{method: "GET", pattern: "/v1/rotation/policies", action: "rotation.policy_list", handle: s.listRotationPolicies},
		{method: "PUT", pattern: "/v1/rotation/policies/" + sp, action: "rotation.policy_set", handle: s.setRotationPolicy},
		{method: "GET", pattern: "/v1/rotation/policies/" + sp, action: "rotation.policy_read", handle: s.getRotationPolicy},
		{method: "POST", pattern: "/v1/rotation/policies/" + sp + "/disable", action: "rotation.policy_disable", handle: s.disableRotationPolicy},
		{method: "POST", pattern: "/v1/rotation/rotate/" + sp, action: "rotation.rotate", handle: s.rotateNow},
		{method: "POST", pattern: "/v1/rotation/bulk", action: "rotation.bulk", handle: s.bulkRotate},
		{method: "GET", pattern: "/v1/rotation/bulk/{id}", action: "rotation.bulk_status", handle: s.bulkStatus},
		{method: "GET", pattern: "/v1/rotation/status", action: "rotation.status", handle: s.rotationStatus},
		{method: "GET", pattern: "/v1/rotation/history/" + sp, action: "rotation.history", handle: s.rotationHistory},
		{method: "POST", pattern: "/v1/rotation/rollback/" + sp, action: "rotation.rollback", handle: s.rollbackRotation},
	}
}

func policyView(p *rotate.Policy) *api.RotationPolicy {
	v := &api.RotationPolicy{Secret: p.Path, LastAt: p.LastAt, NextAt: p.NextAt, RotationSettings: api.RotationSettings{
		Cron: p.Cron, Rotator: p.Rotator, Config: p.Config, Disabled: p.Disabled, Grace: rotate.FormatDuration(p.Grace)}}
	if p.Every != 0 {
		v.Every = rotate.FormatDuration(p.Every)
	}
	if p.Jitter != 0 {
		v.Jitter = rotate.FormatDuration(p.Jitter)
	}
	return v
}

func parseOptDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := rotate.ParseDuration(s)
	if err != nil {
		return 0, tokenward.Errorf(tokenward.EINVALID, "%s: %s", field, tokenward.ErrorMessage(err))
	}
	return d, nil
}

func (s *Server) setRotationPolicy(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	var req api.RotationSettings
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	pol := &rotate.Policy{Path: p + "/" + e + "/" + n, Cron: req.Cron, Rotator: req.Rotator, Config: req.Config, Disabled: req.Disabled}
	var err error
	if pol.Every, err = parseOptDuration("every", req.Every); err != nil {
		return 0, nil, err
	}
	if pol.Jitter, err = parseOptDuration("jitter", req.Jitter); err != nil {
		return 0, nil, err
	}
	if pol.Grace, err = parseOptDuration("grace", req.Grace); err != nil {
		return 0, nil, err
	}
	for k, v := range req.Config {
		if err := validUTF8("config "+k, k+v); err != nil {
			return 0, nil, err
		}
	}
	out, err := s.Core.SetRotationPolicy(c.r.Context(), c.tok, pol)
	if err != nil {
		return 0, nil, err
	}
	c.meta = map[string]string{"rotator": out.Rotator}
	return http.StatusOK, policyView(out), nil
}

func (s *Server) getRotationPolicy(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	pol, err := s.Core.RotationPolicy(c.r.Context(), c.tok, p+"/"+e+"/"+n)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, policyView(pol), nil
}

func (s *Server) listRotationPolicies(c *call) (int, any, error) {
	ps, err := s.Core.RotationPolicies(c.r.Context(), c.tok)
	if err != nil {
		return 0, nil, err
	}
	out := &api.RotationPolicyList{Policies: make([]*api.RotationPolicy, len(ps))}
	for i, p := range ps {
		out.Policies[i] = policyView(p)
	}
	return http.StatusOK, out, nil
}

func (s *Server) disableRotationPolicy(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	var req api.DisableRotationPolicyRequest
	if c.r.ContentLength != 0 {
		if err := decode(c.r, &req); err != nil {
			return 0, nil, err
		}
	}
	pol, err := s.Core.DisableRotationPolicy(c.r.Context(), c.tok, p+"/"+e+"/"+n, !req.Enable)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, policyView(pol), nil
}

func (s *Server) rotateNow(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	r, err := s.Core.RotateNow(c.r.Context(), c.tok, p+"/"+e+"/"+n)
	if err != nil {
		return 0, nil, err
	}
	c.meta = map[string]string{"rotation": r.ID, "step": string(r.Step)}
	return http.StatusOK, r, nil
}

func (s *Server) bulkRotate(c *call) (int, any, error) {
	var req api.BulkRotateRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	for field, v := range map[string]string{"owner": req.Owner, "tag": req.Tag, "scope": req.Scope, "reason": req.Reason} {
		if err := validUTF8(field, v); err != nil {
			return 0, nil, err
		}
	}
	sel := rotate.Selector{All: req.All, Owner: req.Owner, Tag: req.Tag, Scope: req.Scope}
	c.resource = selectorResource(sel)
	if !req.DryRun {
		return s.runBulk(c, sel, req.Concurrency, req.Reason)
	}
	items, err := s.Core.BulkRotate(c.r.Context(), c.tok, sel, true, req.Concurrency, req.Reason)
	if err != nil {
		return 0, nil, err
	}
	if items == nil {
		items = []rotate.BulkItem{}
	}
	c.meta = map[string]string{"dry_run": "true", "secrets": strconv.Itoa(len(items))}
	return http.StatusOK, &api.BulkRotateResponse[rotate.BulkItem]{DryRun: true, Items: items}, nil
}

func selectorResource(sel rotate.Selector) string {
	switch {
	case sel.All:
		return "all"
	case sel.Owner != "":
		return "owner:" + sel.Owner
	case sel.Tag != "":
		return "tag:" + sel.Tag
	}
	return "scope:" + sel.Scope
}

func limitParam(c *call, def int) (int, error) {
	q := c.r.URL.Query().Get("limit")
	if q == "" {
		return def, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > 1000 {
		return 0, tokenward.Errorf(tokenward.EINVALID, "limit must be from 1 to 1000")
	}
	return n, nil
}

func (s *Server) rotationStatus(c *call) (int, any, error) {
	limit, err := limitParam(c, 20)
	if err != nil {
		return 0, nil, err
	}
	fl, failed, err := s.Core.RotationStatus(c.r.Context(), c.tok, limit)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &api.RotationStatusResponse[*rotate.Rotation]{InFlight: fl, Failed: failed}, nil
}

func (s *Server) rotationHistory(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	limit, err := limitParam(c, 50)
	if err != nil {
		return 0, nil, err
	}
	h, err := s.Core.RotationHistory(c.r.Context(), c.tok, p+"/"+e+"/"+n, limit)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &api.RotationHistory[*rotate.Rotation]{Rotations: h}, nil
}

func (s *Server) rollbackRotation(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	r, err := s.Core.RollbackRotation(c.r.Context(), c.tok, p+"/"+e+"/"+n)
	if err != nil {
		return 0, nil, err
	}
	c.meta = map[string]string{"rotation": r.ID, "to": strconv.Itoa(r.CurrentVersion)}
	return http.StatusOK, r, nil
}
