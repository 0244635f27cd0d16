package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/buildinfo"
	"github.com/tokenward/tokenward/internal/core"
)

// apiRoutes is every route: the core ones below, then each feature's group
// (defined in the feature's own file, e.g. oidc.go).
func (s *Server) apiRoutes() []route {
	routes := s.coreRoutes()
	for _, group := range [][]route{
		// Feature route groups, one line each:
		s.oidcRoutes(),
		s.pipelinesRoutes(),
		s.monitorRoutes(),
		s.auditRoutes(),
		s.rotationRoutes(),
		s.dynamicRoutes(),
		s.scanRoutes(),
		s.gatewayRoutes(),
		s.vaultRouteTable(),
		s.gatewayDBRoutes(),
	} {
		routes = append(routes, group...)
	}
	return routes
}

func (s *Server) coreRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/health", action: "health", public: true, handle: s.health},
		{method: "GET", pattern: "/v1/ready", action: "ready", public: true, handle: s.ready},
		{method: "GET", pattern: "/healthz", action: "health", public: true, handle: s.health},
		{method: "GET", pattern: "/readyz", action: "ready", public: true, handle: s.ready},
		{method: "GET", pattern: "/v1/openapi.yaml", public: true, raw: serveOpenAPI},
		{method: "GET", pattern: "/v1/projects", action: "project.list", public: false, handle: s.listProjects},
		{method: "POST", pattern: "/v1/projects", action: "project.create", public: false, handle: s.createProject},
		{method: "GET", pattern: "/v1/projects/{project}", action: "project.read", public: false, handle: s.getProject},
		{method: "POST", pattern: "/v1/projects/{project}/envs", action: "env.create", public: false, handle: s.createEnv},
		{method: "GET", pattern: "/v1/secrets/{project}/{env}", action: "secret.list", public: false, handle: s.listSecrets},
		{method: "GET", pattern: "/v1/values/{project}/{env}", action: "secret.read_env", public: false, handle: s.envValues},
		{method: "GET", pattern: "/v1/secrets/{project}/{env}/{name}", action: "secret.read", public: false, handle: s.getSecret},
		{method: "PUT", pattern: "/v1/secrets/{project}/{env}/{name}", action: "secret.write", public: false, handle: s.putSecret},
		{method: "GET", pattern: "/v1/secrets/{project}/{env}/{name}/versions", action: "secret.history", public: false, handle: s.secretHistory},
		{method: "POST", pattern: "/v1/secrets/{project}/{env}/{name}/rollback", action: "secret.rollback", public: false, handle: s.rollbackSecret},
		{method: "GET", pattern: "/v1/tokens", action: "token.list", public: false, handle: s.listTokens},
		{method: "POST", pattern: "/v1/tokens", action: "token.create", public: false, handle: s.createToken},
		{method: "GET", pattern: "/v1/tokens/self", action: "token.self", public: false, handle: s.selfToken},
		{method: "GET", pattern: "/v1/tokens/{id}", action: "token.read", public: false, handle: s.getToken},
		{method: "POST", pattern: "/v1/tokens/{id}/revoke", action: "token.revoke", public: false, handle: s.revokeToken},
		{method: "POST", pattern: "/v1/keys/rotate", action: "keys.rotate", public: false, handle: s.rotateKeys},
	}
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(OpenAPI())
}

func (s *Server) health(c *call) (int, any, error) {
	return http.StatusOK, map[string]string{"status": "ok", "version": buildinfo.Get().Version}, nil
}

func (s *Server) listProjects(c *call) (int, any, error) {
	ps, err := s.Core.Projects(c.r.Context(), c.tok)
	return http.StatusOK, &api.ProjectList{Projects: ps}, err
}

func (s *Server) createProject(c *call) (int, any, error) {
	var req api.CreateProjectRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	c.resource = req.Name
	p, err := s.Core.CreateProject(c.r.Context(), c.tok, req.Name, req.Environments)
	return http.StatusCreated, p, err
}

func (s *Server) getProject(c *call) (int, any, error) {
	c.resource = c.r.PathValue("project")
	p, err := s.Core.Project(c.r.Context(), c.tok, c.resource)
	return http.StatusOK, p, err
}

func (s *Server) createEnv(c *call) (int, any, error) {
	var req api.CreateEnvRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	project := c.r.PathValue("project")
	c.resource = project + "/" + req.Name
	if err := s.Core.CreateEnv(c.r.Context(), c.tok, project, req.Name); err != nil {
		return 0, nil, err
	}
	p, err := s.Core.Project(c.r.Context(), c.tok, project)
	return http.StatusCreated, p, err
}

func (s *Server) listSecrets(c *call) (int, any, error) {
	project, env := c.r.PathValue("project"), c.r.PathValue("env")
	c.resource = project + "/" + env
	list, err := s.Core.ListSecrets(c.r.Context(), c.tok, project, env)
	return http.StatusOK, &api.SecretList{Secrets: list}, err
}

func (s *Server) envValues(c *call) (int, any, error) {
	project, env := c.r.PathValue("project"), c.r.PathValue("env")
	c.resource = project + "/" + env
	vals, err := s.Core.EnvValues(c.r.Context(), c.tok, project, env)
	if err != nil {
		return 0, nil, err
	}
	c.meta = envCountMeta(len(vals))
	return http.StatusOK, envValuesBody{project, env, vals, &s.envFields}, nil
}

func secretPath(c *call) (string, string, string) {
	p, e, n := c.r.PathValue("project"), c.r.PathValue("env"), c.r.PathValue("name")
	c.resource = p + "/" + e + "/" + n
	return p, e, n
}

// countMetas builds shared audit Metas {key: "1"} … {key: "n"}: a map per
// request was a tenth of a read's allocation. They are shared, so
// read-only; an entry's Meta is never written after its handler returns
// (cloneEntry copies it for the sinks). Built on first use: package init
// stays free of work (every CLI process loads this package;
// TestStartupDoesNoEagerWork).
func countMetas(key string, n int) func(v int) map[string]string {
	ms := sync.OnceValue(func() []map[string]string {
		ms := make([]map[string]string, n)
		for i := range ms {
			ms[i] = map[string]string{key: strconv.Itoa(i + 1)}
		}
		return ms
	})
	return func(v int) map[string]string {
		if ms := ms(); v >= 1 && v <= len(ms) {
			return ms[v-1]
		}
		return map[string]string{key: strconv.Itoa(v)}
	}
}

var (
	// versionMeta is the audit Meta of a read of version v.
	versionMeta = countMetas("version", 64)
	// envCountMeta is the audit Meta of an environment fetch of n values.
	envCountMeta = countMetas("count", 256)
)

func (s *Server) getSecret(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	var sel string
	if c.r.URL.RawQuery != "" { // parsing an absent query allocated on every read
		sel = c.r.URL.Query().Get("version")
	}
	version, label, err := core.ParseVersionSelector(sel)
	if err != nil {
		return 0, nil, err
	}
	var meta *tokenward.Secret
	var value []byte
	if label != "" {
		meta, value, version, err = s.Core.GetSecretLabel(c.r.Context(), c.tok, p, e, n, label)
	} else {
		meta, value, err = s.Core.GetSecret(c.r.Context(), c.tok, p, e, n, version)
	}
	if err != nil {
		return 0, nil, err
	}
	if version == 0 {
		version = meta.Version
	}
	c.meta = versionMeta(version)
	return http.StatusOK, secretBody{meta, value, version}, nil
}

func (s *Server) putSecret(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	var req api.PutSecretRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	if req.Value == nil {
		return 0, nil, tokenward.Errorf(tokenward.EINVALID, "value is required")
	}
	for field, v := range map[string]*string{"owner": req.Owner, "description": req.Description} {
		if v != nil {
			if err := validUTF8(field, *v); err != nil {
				return 0, nil, err
			}
		}
	}
	meta, err := s.Core.PutSecret(c.r.Context(), c.tok, core.PutSecretInput{
		Project: p, Env: e, Name: n, Value: []byte(*req.Value),
		Owner: req.Owner, Description: req.Description, Tags: req.Tags, ExpiresAt: req.ExpiresAt, IfVersion: req.IfVersion,
	})
	if err != nil {
		return 0, nil, err
	}
	c.meta = map[string]string{"version": strconv.Itoa(meta.Version)}
	return http.StatusOK, meta, nil
}

func (s *Server) secretHistory(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	vs, err := s.Core.SecretHistory(c.r.Context(), c.tok, p, e, n)
	return http.StatusOK, &api.SecretVersions{Versions: vs}, err
}

func (s *Server) rollbackSecret(c *call) (int, any, error) {
	p, e, n := secretPath(c)
	var req api.RollbackSecretRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	meta, err := s.Core.RollbackSecret(c.r.Context(), c.tok, p, e, n, req.To)
	if err == nil {
		c.meta = map[string]string{"to": strconv.Itoa(req.To), "version": strconv.Itoa(meta.Version)}
	}
	return http.StatusOK, meta, err
}

func (s *Server) listTokens(c *call) (int, any, error) {
	ts, err := s.Core.Tokens(c.r.Context(), c.tok)
	return http.StatusOK, &api.TokenList{Tokens: ts}, err
}

func (s *Server) createToken(c *call) (int, any, error) {
	var req api.CreateTokenRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	grants, err := tokenward.ParseGrants(req.Grants)
	if err != nil {
		return 0, nil, err
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "ttl must be a positive duration like 24h or 15m")
		}
		ttl = d
	}
	t, secret, err := s.Core.CreateToken(c.r.Context(), c.tok, core.CreateTokenInput{
		Name: req.Name, Kind: tokenward.TokenKind(req.Kind), Owner: req.Owner, Grants: grants, TTL: ttl,
	})
	if err != nil {
		return 0, nil, err
	}
	c.resource = "token:" + t.ID
	return http.StatusCreated, &api.CreateTokenResponse{Token: t, Secret: secret}, nil
}

func (s *Server) selfToken(c *call) (int, any, error) {
	c.resource = "token:" + c.tok.ID
	return http.StatusOK, c.tok, nil
}

func (s *Server) getToken(c *call) (int, any, error) {
	id := c.r.PathValue("id")
	c.resource = "token:" + id
	t, err := s.Core.Token(c.r.Context(), c.tok, id)
	return http.StatusOK, t, err
}

func (s *Server) revokeToken(c *call) (int, any, error) {
	id := c.r.PathValue("id")
	c.resource = "token:" + id
	var req api.RevokeTokenRequest
	if c.r.ContentLength != 0 {
		if err := decode(c.r, &req); err != nil {
			return 0, nil, err
		}
	}
	if req.Cascade {
		return s.revokeTokenCascade(c, id)
	}
	t, err := s.Core.RevokeToken(c.r.Context(), c.tok, id)
	if err == nil {
		c.resource = "token:" + t.ID
	}
	return http.StatusOK, t, err
}

// revokeTokenCascade revokes a token and its descendants. The request's
// own entry is the token's (meta cascade, revoked); each descendant revoked
// gets an entry of its own, as a single revocation would, with meta
// cascade_from. Once started it runs to its end even if the client goes:
// a cascade cut midway leaves the rest of the tree active.
//
// Every entry is dated when the request began: the caller may be in the
// tree (a token revoking itself and what it made), and an entry of a
// token dated after its revocation reads to the monitor as a revoked
// token used (revoked_token_use).
func (s *Server) revokeTokenCascade(c *call, id string) (int, any, error) {
	start := s.Core.Now().UTC()
	t, ids, err := s.Core.RevokeTokenCascade(context.WithoutCancel(c.r.Context()), c.tok, id)
	if t == nil {
		return 0, nil, err
	}
	c.resource = "token:" + t.ID
	c.meta = map[string]string{"cascade": "true", "revoked": strconv.Itoa(len(ids))}
	c.audit = func(e *tokenward.AuditEntry) { e.Time = start }
	if aerr := s.auditCascade(c, start, t.ID, ids); aerr != nil && err == nil {
		err = aerr
	}
	if err != nil {
		return 0, nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	return http.StatusOK, &api.RevokeTokenResponse{Token: t, Revoked: ids}, nil
}

// auditCascade records the entry of each descendant a cascade revoked,
// before the request's own (fail-closed, as that one: the first that
// cannot be recorded fails the request).
func (s *Server) auditCascade(c *call, at time.Time, root string, ids []string) error {
	if s.Audit == nil {
		return nil
	}
	ip, ua := s.clientIP(c.r), trunc(c.r.UserAgent(), 256)
	for _, id := range ids {
		if id == root {
			continue
		}
		e := &tokenward.AuditEntry{
			Time: at, RequestID: c.reqID, Action: "token.revoke", Resource: "token:" + id,
			Outcome: tokenward.OutcomeAllowed, Status: http.StatusOK, SourceIP: ip, UserAgent: ua,
			Meta: map[string]string{"cascade_from": root},
		}
		fillAuditToken(e, c.tok, nil, nil)
		if err := s.Audit(auditContext(c.r), e); err != nil {
			return s.auditRefused(c.reqID, err)
		}
	}
	return nil
}

func (s *Server) rotateKeys(c *call) (int, any, error) {
	c.resource = "keys"
	id, err := s.Core.RotateKeys(c.r.Context(), c.tok)
	return http.StatusOK, &api.KeyRotation{MasterKeyID: id}, err
}
