package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/gateway"
	"github.com/tokenward/tokenward/internal/monitor"
)

// The credential-injecting gateway (docs/gateway.md): route management
// under /v1/gateway/routes, and the calls themselves under
// /gw/<route>/<path>, which ServeHTTP sends to serveGateway before any
// path cleaning (gateway.CheckPath judges the raw path).

// gatewayPrefix is where calls through routes are served.
const gatewayPrefix = "/gw/"

// gatewayPattern names calls through routes in metrics.
const gatewayPattern = "/gw/{route}/{path...}"

func (s *Server) gatewayRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/gateway/routes", action: "gateway.route.list", handle: s.listGatewayRoutes},
		{method: "POST", pattern: "/v1/gateway/routes", action: "gateway.route.create", handle: s.createGatewayRoute},
		{method: "GET", pattern: "/v1/gateway/routes/{route}", action: "gateway.route.read", handle: s.getGatewayRoute},
		{method: "DELETE", pattern: "/v1/gateway/routes/{route}", action: "gateway.route.delete", handle: s.deleteGatewayRoute},
	}
}

func routeOut(r *tokenward.GatewayRoute) *api.GatewayRoute {
	out := &api.GatewayRoute{Name: r.Name, Upstream: r.Upstream, Secret: r.Secret, UserSecret: r.UserSecret, Inject: r.Inject,
		Allow: r.Allow, Rate: r.Rate, AllowNets: r.AllowNets, CABundle: r.CABundle, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy}
	if out.Allow == nil {
		out.Allow = []string{}
	}
	if r.Timeout > 0 {
		out.Timeout = r.Timeout.String()
	}
	return out
}

func (s *Server) createGatewayRoute(c *call) (int, any, error) {
	var req api.GatewayRoute
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	c.resource = "gateway:" + tokenward.Printable(req.Name)
	r := &tokenward.GatewayRoute{Name: req.Name, Upstream: req.Upstream, Secret: req.Secret, UserSecret: req.UserSecret, Inject: req.Inject,
		Allow: req.Allow, Rate: req.Rate, AllowNets: req.AllowNets, CABundle: req.CABundle}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "timeout %q: want a positive Go duration such as 30s", tokenward.Printable(req.Timeout))
		}
		r.Timeout = d
	}
	if _, err := gateway.Compile(r); err != nil {
		return 0, nil, err
	}
	r, err := s.Core.CreateGatewayRoute(c.r.Context(), c.tok, r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, routeOut(r), nil
}

func (s *Server) listGatewayRoutes(c *call) (int, any, error) {
	rs, err := s.Core.GatewayRoutes(c.r.Context(), c.tok)
	if err != nil {
		return 0, nil, err
	}
	out := &api.GatewayRouteList{Routes: make([]*api.GatewayRoute, len(rs))}
	for i, r := range rs {
		out.Routes[i] = routeOut(r)
	}
	return http.StatusOK, out, nil
}

func (s *Server) getGatewayRoute(c *call) (int, any, error) {
	name := c.r.PathValue("route")
	c.resource = "gateway:" + name
	r, err := s.Core.GatewayRoute(c.r.Context(), c.tok, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, routeOut(r), nil
}

func (s *Server) deleteGatewayRoute(c *call) (int, any, error) {
	name := c.r.PathValue("route")
	c.resource = "gateway:" + name
	r, err := s.Core.DeleteGatewayRoute(c.r.Context(), c.tok, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, routeOut(r), nil
}

// routeLimits are the per-token buckets of each route with a rate.
type routeLimits struct {
	mu sync.Mutex
	m  map[string]*buckets // by route name; remade when the route's rate changes
}

func (l *routeLimits) take(rt *gateway.Route, tokenID string, now time.Time) (bool, time.Duration) {
	lim := Limit{Rate: rt.Rate, Burst: rt.Burst}
	l.mu.Lock()
	b := l.m[rt.Name]
	if b == nil || b.limit != lim {
		if l.m == nil {
			l.m = map[string]*buckets{}
		}
		b = newBuckets(lim, maxBuckets)
		l.m[rt.Name] = b
	}
	l.mu.Unlock()
	return b.take(tokenID, now)
}

// splitGatewayPath splits an escaped /gw/<route>/<path> into the route
// name and the escaped path ("/" when none).
func splitGatewayPath(escaped string) (string, string) {
	rest := strings.TrimPrefix(escaped, gatewayPrefix)
	name, path, found := strings.Cut(rest, "/")
	if !found {
		return name, "/"
	}
	return name, "/" + path
}

// serveGateway serves one call through a route: authenticate (the
// server's per-token limit applies), the gateway grant, the route, the
// path and the route's allow rules, the route's per-token rate, then
// gateway.Forward. Every call is audited as gateway.call: refusals before
// answering, a forwarded call when its response body ends (fail-closed:
// the response is cut off if the trail cannot record it), or when it
// failed or was cut off.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("X-Request-Id", reqID)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p) // a response cut off on purpose
			}
			// The panic value is not logged: it could hold request data.
			s.Logger.Error("panic in gateway call", "request_id", reqID)
			panic(http.ErrAbortHandler)
		}
	}()
	ip := s.clientIP(r)
	name, rest := splitGatewayPath(r.URL.EscapedPath())
	ctx := r.Context()
	var rt *gateway.Route
	raw := bearer(r)
	tok, err := s.authenticate(ctx, w, raw, ip)
	if err == nil {
		err = tokenward.ValidateRouteName(name)
	}
	if err == nil && !tok.Grants.AllowsRoute(name) {
		err = tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: gateway:%s", name)
	}
	if err == nil && s.Gateway == nil {
		err = tokenward.Errorf(tokenward.EUNAVAILABLE, "the gateway is not enabled on this server")
	}
	if err == nil {
		rt, err = s.Gateway.Route(ctx, name)
	}
	if err == nil {
		var segs []string
		if segs, err = gateway.CheckPath(rest); err == nil {
			if m, refused := rt.Refuses(r, segs); refused {
				how := ""
				if m != r.Method {
					how = " (named by a method override)"
				}
				err = tokenward.Errorf(tokenward.EFORBIDDEN, "route %s does not allow %s %s%s", name, tokenward.Printable(trunc(m, 32)), tokenward.Printable(rest), how)
			}
		}
	}
	if err == nil && rt.Rate > 0 {
		if ok, wait := s.gwLimits.take(rt, tok.ID, s.Core.Now()); !ok {
			err = rateLimited(w, wait, "too many calls through route "+name+" for this token")
		}
	}
	entry := func(status int, err error, c *gateway.Call) *tokenward.AuditEntry {
		e := &tokenward.AuditEntry{
			Time: s.Core.Now().UTC(), RequestID: reqID, Action: monitor.ActionGatewayCall, Resource: "gateway:" + trunc(tokenward.Printable(name), 64),
			Outcome: outcome(err), Reason: reason(err), Status: status, SourceIP: ip, UserAgent: trunc(r.UserAgent(), 256),
			Meta: map[string]string{"route": tokenward.Printable(name), "method": tokenward.Printable(r.Method), "path": trunc(rest, 256),
				"latency_ms": strconv.FormatInt(time.Since(start).Milliseconds(), 10)},
		}
		if c != nil {
			e.Meta["bytes_in"] = strconv.FormatInt(c.BytesIn.Load(), 10)
			e.Meta["bytes_out"] = strconv.FormatInt(c.BytesOut, 10)
			if c.Aborted {
				e.Meta["aborted"] = "true"
			}
			if c.Ended != nil {
				e.Meta["ended_by"] = tokenward.ErrorMessage(c.Ended)
			}
		}
		fillAuditToken(e, tok, err, nil)
		return e
	}
	record := func(e *tokenward.AuditEntry) error {
		if s.Audit == nil {
			return nil
		}
		return s.Audit(auditContext(r), e)
	}
	if err = clientGone(r, err); err != nil {
		setSafetyHeaders(w.Header())
		if aerr := record(entry(statusOf(err, 0), err, nil)); aerr != nil {
			err = s.auditRefused(reqID, aerr)
		}
		writeError(w, err)
		return
	}

	c := &gateway.Call{Route: rt, Path: rest}
	// A stream outlives the check above: while it lasts, the token is
	// checked again (every gateway.DefaultRecheckInterval, before a write),
	// and the call is cut off once it is revoked (or suspended), expired
	// or no longer holds gateway:<route>. While the store cannot be read
	// the call goes on, as the database gateway's sessions do.
	c.Recheck = func() error {
		fresh, err := s.Core.Authenticate(ctx, raw, ip)
		switch {
		case err == nil && !fresh.Grants.AllowsRoute(name):
			return tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: gateway:%s", name)
		case tokenward.ErrorCode(err) == tokenward.EUNAUTHORIZED:
			return err
		}
		return nil
	}
	audited := false
	c.OnDone = func(c *gateway.Call) error {
		audited = true
		return record(entry(c.Status, nil, c))
	}
	s.Gateway.Forward(w, r, c)
	if !audited {
		aerr := record(entry(c.Status, c.Err, c))
		switch {
		case c.Err != nil && aerr != nil:
			writeError(w, s.auditRefused(reqID, aerr))
			return
		case c.Err != nil:
			writeGatewayError(w, c.Status, c.Err)
			return
		case aerr != nil:
			s.Logger.Error("audit record failed after a gateway response started", "request_id", reqID, "err", aerr)
			c.Aborted = true
		}
	}
	if c.Aborted {
		panic(http.ErrAbortHandler) // the caller sees the response cut off
	}
}

// writeGatewayError answers a call that failed upstream with the
// gateway's status for it (502, 504; 499 is not sent to anyone).
func writeGatewayError(w http.ResponseWriter, status int, err error) {
	var b api.ErrorBody
	b.Error.Code = tokenward.ErrorCode(err)
	b.Error.Message = tokenward.ErrorMessage(err)
	writeJSON(w, status, b)
}
