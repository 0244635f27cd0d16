package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/oidc"
)

// oidcRoutes are the routes of just-in-time CI credentials: trust bindings
// and the public exchange of a CI identity token for a twj_ token.
func (s *Server) oidcRoutes() []route {
	return []route{
		// Public: the identity token in the body is the credential. Audited
		// all the same, with the detailed reason of a refusal.
		{method: "POST", pattern: "/v1/auth/oidc/login", action: "auth.oidc_login", public: true, audited: true, handle: s.loginOIDC},
		{method: "GET", pattern: "/v1/bindings", action: "binding.list", handle: s.listBindings},
		{method: "POST", pattern: "/v1/bindings", action: "binding.create", handle: s.createBinding},
		{method: "GET", pattern: "/v1/bindings/{name}", action: "binding.read", handle: s.getBinding},
		{method: "DELETE", pattern: "/v1/bindings/{name}", action: "binding.delete", handle: s.deleteBinding},
		{method: "POST", pattern: "/v1/bindings/{name}/enable", action: "binding.enable", handle: s.enableBinding},
		{method: "POST", pattern: "/v1/bindings/{name}/disable", action: "binding.disable", handle: s.disableBinding},
	}
}

func bindingBody(b *oidc.Binding) *api.Binding {
	out := &api.Binding{
		Name: b.Name, Issuer: b.Issuer, Audiences: b.Audiences, Grants: b.Grants.Strings(), TTL: b.TTL.String(),
		Enabled: b.Enabled, CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt, CreatedBy: b.CreatedBy,
		Claims: make([]api.ClaimCondition, len(b.Claims)),
	}
	for i, c := range b.Claims {
		out.Claims[i] = api.ClaimCondition{Claim: c.Claim, Op: string(c.Op), Values: c.Values}
	}
	return out
}

// bindingFromRequest turns a request into a binding with grants, checking
// each field.
func bindingFromRequest(req *api.CreateBindingRequest, grants tokenward.Grants) (*oidc.Binding, error) {
	b := &oidc.Binding{Name: req.Name, Issuer: req.Issuer, Audiences: req.Audiences, Grants: grants, Enabled: !req.Disabled}
	if err := oidc.ValidateBindingName(req.Name); err != nil {
		return nil, err
	}
	if req.Preset != "" {
		if err := b.ApplyPreset(req.Preset); err != nil {
			return nil, err
		}
	}
	if req.TTL == "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "ttl is required, e.g. 15m")
	}
	d, err := time.ParseDuration(req.TTL)
	if err != nil || d <= 0 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "ttl must be a positive duration like 15m")
	}
	b.TTL = d
	if len(req.Claims) > oidc.MaxClaimConditions {
		return nil, tokenward.Errorf(tokenward.EINVALID, "%d claim conditions (at most %d)", len(req.Claims), oidc.MaxClaimConditions)
	}
	for _, c := range req.Claims {
		var cond oidc.ClaimCondition
		switch oidc.MatchOp(c.Op) {
		case "":
			if cond, err = oidc.ConditionFromValues(c.Claim, c.Values); err != nil {
				return nil, err
			}
		case oidc.MatchExact, oidc.MatchGlob, oidc.MatchOneOf:
			cond = oidc.ClaimCondition{Claim: c.Claim, Op: oidc.MatchOp(c.Op), Values: c.Values}
			if err := cond.Validate(); err != nil {
				return nil, err
			}
		default:
			return nil, tokenward.Errorf(tokenward.EINVALID, "claim condition op must be exact, glob or one_of")
		}
		b.Claims = append(b.Claims, cond)
	}
	return b, nil
}

func (s *Server) listBindings(c *call) (int, any, error) {
	bs, err := s.Core.Bindings(c.r.Context(), c.tok)
	if err != nil {
		return 0, nil, err
	}
	out := make([]*api.Binding, len(bs))
	for i, b := range bs {
		out[i] = bindingBody(b)
	}
	return http.StatusOK, &api.BindingList{Bindings: out}, nil
}

func (s *Server) createBinding(c *call) (int, any, error) {
	var req api.CreateBindingRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	grants, err := tokenward.ParseGrants(req.Grants)
	if err != nil {
		return 0, nil, err
	}
	if oidc.ValidateBindingName(req.Name) == nil {
		c.resource = "binding:" + req.Name
	}
	b, err := bindingFromRequest(&req, grants)
	if err != nil {
		return 0, nil, err
	}
	nb, err := s.Core.CreateBinding(c.r.Context(), c.tok, b)
	if err != nil {
		return 0, nil, err
	}
	body := bindingBody(nb)
	body.Warnings = nb.Warnings()
	return http.StatusCreated, body, nil
}

// bindingName reads {name} and names the audit resource after it when valid
// (an invalid name never reaches the audit log).
func bindingName(c *call) string {
	name := c.r.PathValue("name")
	if oidc.ValidateBindingName(name) == nil {
		c.resource = "binding:" + name
	}
	return name
}

func (s *Server) getBinding(c *call) (int, any, error) {
	b, err := s.Core.Binding(c.r.Context(), c.tok, bindingName(c))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, bindingBody(b), nil
}

func (s *Server) deleteBinding(c *call) (int, any, error) {
	b, err := s.Core.DeleteBinding(c.r.Context(), c.tok, bindingName(c))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, bindingBody(b), nil
}

func (s *Server) enableBinding(c *call) (int, any, error)  { return s.setBindingEnabled(c, true) }
func (s *Server) disableBinding(c *call) (int, any, error) { return s.setBindingEnabled(c, false) }

func (s *Server) setBindingEnabled(c *call, enabled bool) (int, any, error) {
	b, err := s.Core.SetBindingEnabled(c.r.Context(), c.tok, bindingName(c), enabled)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, bindingBody(b), nil
}

// maxLoginBody bounds the login body: an identity token is at most
// oidc.MaxJWTBytes, and this route is public.
const maxLoginBody = oidc.MaxJWTBytes + 4<<10

func (s *Server) loginOIDC(c *call) (int, any, error) {
	c.r.Body = http.MaxBytesReader(nil, c.r.Body, maxLoginBody)
	var req api.OIDCLoginRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	tok, secret, err := s.exchangeOIDC(c, req.Binding, strings.TrimSpace(req.JWT))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &api.CreateTokenResponse{Token: tok, Secret: secret}, nil
}

// exchangeOIDC exchanges a CI identity token for a just-in-time token
// under binding, filling in the request's audit entry (for the native
// login and Vault's auth/jwt/login).
func (s *Server) exchangeOIDC(c *call, binding, jwt string) (*tokenward.Token, string, error) {
	if oidc.ValidateBindingName(binding) == nil {
		c.resource = "binding:" + binding
	}
	tok, secret, err := s.Core.LoginOIDC(c.r.Context(), binding, jwt, s.clientIP(c.r))
	var d *oidc.Denial
	switch {
	case errors.As(err, &d):
		// The caller sees a generic message; the audit entry gets the
		// detailed reason and, when the signature held, the job's CI facts.
		c.audit = func(e *tokenward.AuditEntry) {
			e.Reason, e.CI = d.Reason, d.CI
			if oidc.ValidateBindingName(d.Binding) == nil {
				e.Resource = "binding:" + d.Binding
			}
			if d.Replay {
				e.Meta = addMeta(e.Meta, "suspicious", "replay")
			}
		}
		return nil, "", err
	case err != nil:
		return nil, "", err
	}
	c.resource = "binding:" + strings.TrimPrefix(tok.CreatedBy, "binding:")
	c.audit = func(e *tokenward.AuditEntry) {
		e.TokenID, e.TokenName, e.CI = tok.ID, tok.Name, tok.CI
		e.Meta = addMeta(addMeta(e.Meta, "minted", "token:"+tok.ID), "expires_at", tok.ExpiresAt.Format(time.RFC3339))
	}
	return tok, secret, nil
}

// addMeta sets k to v in m, making m when nil.
func addMeta(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}
