package httpapi

import (
	"net/http"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/vaultapi"
)

// vaultRoutes serves the Vault API (internal/vaultapi) beside tokenward's
// own: each route wrapped as every route is (authentication, audit,
// metrics), with Vault's token header, statuses and error body.
type vaultRoutes struct {
	api      *vaultapi.API
	handlers map[*vaultapi.Route]http.Handler
	native   map[string]bool // first segments of tokenward's own routes under /v1/
}

// vaultRouteTable lists the Vault routes in the server's route table (for
// Routes, the OpenAPI check and the authorization matrix); the mux does
// not serve them: vaultHandler does.
func (s *Server) vaultRouteTable() []route {
	out := make([]route, len(vaultapi.Routes))
	for i, vr := range vaultapi.Routes {
		out[i] = route{method: vr.Method, pattern: vr.Pattern, action: vr.Action, public: vr.Public, audited: vr.Audited, vault: true, handle: s.serveVault}
	}
	return out
}

func (s *Server) newVaultRoutes() vaultRoutes {
	v := vaultRoutes{handlers: map[*vaultapi.Route]http.Handler{}, native: map[string]bool{}}
	for _, rt := range s.routes {
		if rest, ok := strings.CutPrefix(rt.pattern, "/v1/"); ok && !rt.vault {
			first, _, _ := strings.Cut(rest, "/")
			v.native[first] = true
		}
	}
	v.api = &vaultapi.API{Core: s.Core, Native: func(name string) bool { return v.native[name] }}
	for i := range vaultapi.Routes {
		vr := &vaultapi.Routes[i]
		for _, rt := range s.routes {
			if rt.vault && rt.method == vr.Method && rt.pattern == vr.Pattern {
				v.handlers[vr] = s.wrap(rt)
			}
		}
	}
	return v
}

// NativeSegments lists the first path segments under /v1/ of tokenward's
// own API: projects so named cannot be Vault mounts (docs/vault.md).
func (s *Server) NativeSegments() []string {
	var out []string
	for seg := range s.vault.native {
		out = append(out, seg)
	}
	return out
}

// vaultHandler returns the handler of a Vault API request, false for a
// request of tokenward's own API.
func (s *Server) vaultHandler(r *http.Request) (http.Handler, bool) {
	req, ok := vaultapi.Parse(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, s.vault.api.Native)
	if !ok {
		return nil, false
	}
	if req.Route == nil {
		// No such Vault route: refused like an unknown route, unaudited.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeVaultError(w, req.Err) }), true
	}
	r.Pattern = req.Route.Method + " " + req.Route.Pattern // the metrics' label
	return s.vault.handlers[req.Route], true
}

// serveVault is the handle of every Vault route.
func (s *Server) serveVault(c *call) (int, any, error) {
	req, _ := vaultapi.Parse(c.r.Method, c.r.URL.EscapedPath(), c.r.URL.RawQuery, s.vault.api.Native)
	vc := &vaultapi.Call{R: c.r, Token: c.tok, Req: req, RequestID: c.reqID}
	vc.Login = func(role, jwt string) (*tokenward.Token, string, error) { return s.exchangeOIDC(c, role, jwt) }
	status, body, err := s.vault.api.Serve(vc)
	if c.resource == "" {
		c.resource = vc.Resource
	}
	c.meta = vc.Meta
	return status, body, err
}

// vaultStatus is statusOf as Vault answers: a refused token is 403 (Vault
// has no 401) and a failed check-and-set 400.
func vaultStatus(err error, ok int) int {
	switch tokenward.ErrorCode(err) {
	case tokenward.EUNAUTHORIZED:
		return http.StatusForbidden
	case tokenward.ECONFLICT:
		return http.StatusBadRequest
	}
	return statusOf(err, ok)
}

func writeVaultError(w http.ResponseWriter, err error) {
	writeJSON(w, vaultStatus(err, 0), vaultapi.ErrorBody(err))
}
