package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/monitor"
)

// monitorRoutes are the routes of usage monitoring, anomalies, the hygiene
// report, leak reports, retirement and change events (internal/core
// monitor.go does the work).
func (s *Server) monitorRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/anomalies", action: "anomaly.list", handle: s.listAnomalies},
		{method: "POST", pattern: "/v1/anomalies/{id}/ack", action: "anomaly.ack", handle: s.ackAnomaly},
		{method: "GET", pattern: "/v1/report", action: "report.read", handle: s.hygieneReport},
		{method: "POST", pattern: "/v1/tokens/report-leak", action: monitor.ActionReportLeak, public: true, audited: true, handle: s.reportLeak},
		{method: "GET", pattern: "/v1/usage/tokens", action: "usage.tokens", handle: s.tokenUsage},
		{method: "GET", pattern: "/v1/usage/secrets/{project}/{env}", action: "usage.secrets", handle: s.secretUsage},
		{method: "POST", pattern: "/v1/projects/{project}/retire", action: "project.retire", handle: s.retireProject},
		{method: "POST", pattern: "/v1/projects/{project}/envs/{env}/retire", action: "env.retire", handle: s.retireEnv},
		{method: "POST", pattern: "/v1/projects/{project}/envs/{env}/restore", action: "env.restore", handle: s.restoreEnv},
		{method: "GET", pattern: "/v1/archives", action: "archive.list", handle: s.listArchives},
		{method: "GET", pattern: "/v1/events/stream", action: "events.stream", raw: s.eventsStream},
	}
}

// monitorState is the per-server state of the monitoring routes.
type monitorState struct {
	once     sync.Once
	limiter  *ipLimiter
	stop     chan struct{} // closed by StopStreams
	stopOnce sync.Once
}

func (s *Server) monitorInit() {
	s.monitor.once.Do(func() {
		s.monitor.limiter = newIPLimiter(10, time.Minute, 10_000)
		s.monitor.stop = make(chan struct{})
	})
}

func (s *Server) leakLimiter() *ipLimiter {
	s.monitorInit()
	return s.monitor.limiter
}

// StopStreams ends every event stream (and refuses new ones), so a
// graceful shutdown does not wait for clients that never hang up. Call it
// when shutdown begins.
func (s *Server) StopStreams() {
	s.monitorInit()
	s.monitor.stopOnce.Do(func() { close(s.monitor.stop) })
}

// ipLimiter allows n requests per window per source IP (fixed windows), for
// the public leak-report route. It holds at most max IPs; when full it
// forgets them all, which errs on the side of accepting reports.
type ipLimiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	max    int
	seen   map[string]*ipWindow
}

type ipWindow struct {
	start time.Time
	count int
}

func newIPLimiter(n int, window time.Duration, max int) *ipLimiter {
	return &ipLimiter{n: n, window: window, max: max, seen: map[string]*ipWindow{}}
}

func (l *ipLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.seen[ip]
	if w == nil || now.Sub(w.start) >= l.window || now.Before(w.start) {
		if w == nil && len(l.seen) >= l.max {
			l.seen = map[string]*ipWindow{}
		}
		w = &ipWindow{start: now}
		l.seen[ip] = w
	}
	w.count++
	return w.count <= l.n
}

func (s *Server) listAnomalies(c *call) (int, any, error) {
	q := c.r.URL.Query()
	all := q.Get("all") == "true"
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "limit must be a whole number of 1 or more")
		}
		limit = n
	}
	list, err := s.Core.Anomalies(c.r.Context(), c.tok, all, limit)
	return http.StatusOK, &api.AnomalyList[*monitor.Record]{Anomalies: list}, err
}

func (s *Server) ackAnomaly(c *call) (int, any, error) {
	id := c.r.PathValue("id")
	c.resource = "anomaly:" + trunc(id, 64)
	rec, err := s.Core.AckAnomaly(c.r.Context(), c.tok, id)
	return http.StatusOK, rec, err
}

func (s *Server) hygieneReport(c *call) (int, any, error) {
	var window time.Duration
	if v := c.r.URL.Query().Get("expiry_days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 366 {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "expiry_days must be a whole number from 1 to 366")
		}
		window = time.Duration(n) * 24 * time.Hour
	}
	rep, err := s.Core.ReportExpiringWithin(c.r.Context(), c.tok, window)
	return http.StatusOK, rep, err
}

// reportLeak answers 202 with the same body whether the token exists or
// not, so the route cannot be used to test tokens. Reports are limited per
// source address as failed authentications are (tokenward.SourceKey: an IPv6
// client by its /64), so a host cannot take a fresh budget per address of
// its /64, nor fill the limiter's table, which then forgets every address.
func (s *Server) reportLeak(c *call) (int, any, error) {
	if !s.leakLimiter().allow(tokenward.SourceKey(s.clientIP(c.r)), s.Core.Now()) {
		return 0, nil, tokenward.Errorf(tokenward.ERATELIMITED, "too many leak reports from this address; try again in a minute")
	}
	var req api.ReportLeakRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	if req.Token == "" || len(req.Token) > 256 {
		return 0, nil, tokenward.Errorf(tokenward.EINVALID, "token is required (at most 256 characters)")
	}
	id, err := s.Core.ReportLeak(c.r.Context(), req.Token)
	if err != nil {
		return 0, nil, err
	}
	if id != "" {
		c.resource = "token:" + id
	} else {
		c.audit = func(e *tokenward.AuditEntry) {
			e.Outcome, e.Reason = tokenward.OutcomeDenied, "not a known tokenward token"
		}
	}
	return http.StatusAccepted, &api.ReportLeakResponse{Status: "received"}, nil
}

func (s *Server) tokenUsage(c *call) (int, any, error) {
	u, err := s.Core.TokenUsages(c.r.Context(), c.tok)
	return http.StatusOK, &api.TokenUsages[monitor.TokenUsage]{Tokens: u}, err
}

func (s *Server) secretUsage(c *call) (int, any, error) {
	project, env := c.r.PathValue("project"), c.r.PathValue("env")
	c.resource = project + "/" + env
	u, err := s.Core.SecretUsages(c.r.Context(), c.tok, project, env)
	return http.StatusOK, &api.SecretUsages[monitor.SecretUsage]{Secrets: u}, err
}

func parseRetention(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, ok := cutDays(s); ok {
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, tokenward.Errorf(tokenward.EINVALID, "retention must be a positive duration like 30d or 720h")
	}
	return d, nil
}

func cutDays(s string) (int, bool) {
	if len(s) < 2 || s[len(s)-1] != 'd' {
		return 0, false
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	return n, err == nil && n > 0 && n <= 3650
}

func (s *Server) retire(c *call, project, env string) (int, any, error) {
	var req api.RetireRequest
	if err := decode(c.r, &req); err != nil {
		return 0, nil, err
	}
	retention, err := parseRetention(req.Retention)
	if err != nil {
		return 0, nil, err
	}
	plan, err := s.Core.Retire(c.r.Context(), c.tok, project, env, retention, req.DryRun)
	if err == nil {
		c.meta = map[string]string{"dry_run": strconv.FormatBool(req.DryRun), "revoke": strconv.Itoa(len(plan.Revoke)),
			"narrow": strconv.Itoa(len(plan.Narrow)), "secrets": strconv.Itoa(len(plan.Secrets))}
	}
	return http.StatusOK, plan, err
}

func (s *Server) retireProject(c *call) (int, any, error) {
	project := c.r.PathValue("project")
	c.resource = project
	return s.retire(c, project, "")
}

func (s *Server) retireEnv(c *call) (int, any, error) {
	project, env := c.r.PathValue("project"), c.r.PathValue("env")
	c.resource = project + "/" + env
	return s.retire(c, project, env)
}

func (s *Server) restoreEnv(c *call) (int, any, error) {
	project, env := c.r.PathValue("project"), c.r.PathValue("env")
	c.resource = project + "/" + env
	n, err := s.Core.RestoreEnv(c.r.Context(), c.tok, project, env)
	if err == nil {
		c.meta = map[string]string{"secrets": strconv.Itoa(n)}
	}
	return http.StatusOK, &api.RestoreResponse{Project: project, Env: env, Restored: n}, err
}

func (s *Server) listArchives(c *call) (int, any, error) {
	list, err := s.Core.Archives(c.r.Context(), c.tok)
	return http.StatusOK, &api.ArchiveList[*monitor.Archive]{Archives: list}, err
}

// eventsHeartbeat is how often an idle event stream sends an empty line
// (and checks the token is still valid).
const eventsHeartbeat = 15 * time.Second

// eventsStream streams the change events the token may see as JSON lines
// (application/x-ndjson), one event per line, with an empty line as a
// heartbeat every eventsHeartbeat. It authenticates and audits itself (a
// streaming response does not fit wrap), and ends when the token stops
// being valid, the client goes, or the subscriber falls behind (a final
// {"error": ...} line says so).
func (s *Server) eventsStream(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("X-Request-Id", reqID)
	ip := s.clientIP(r)
	raw := bearer(r)
	tok, err := s.authenticate(r.Context(), w, raw, ip)
	if err == nil {
		err = s.Core.WatchEvents(tok)
	}
	err = clientGone(r, err)
	if s.Audit != nil {
		e := &tokenward.AuditEntry{
			Time: start.UTC(), RequestID: reqID, Action: "events.stream", Outcome: outcome(err), Reason: reason(err),
			Status: statusOf(err, http.StatusOK), SourceIP: ip, UserAgent: trunc(r.UserAgent(), 256),
		}
		// As every route does: a revoked or expired token refused here is
		// named too (a leak signal for the monitor).
		fillAuditToken(e, tok, err, nil)
		if aerr := s.Audit(auditContext(r), e); aerr != nil {
			writeError(w, s.auditRefused(reqID, aerr))
			return
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.monitorInit()
	select {
	case <-s.monitor.stop:
		writeError(w, tokenward.Errorf(tokenward.EUNAVAILABLE, "the server is shutting down"))
		return
	default:
	}
	sub, err := s.Core.Monitoring.Events.Subscribe(256)
	if err != nil {
		writeError(w, err)
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	tick := time.NewTicker(eventsHeartbeat)
	defer tick.Stop()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.monitor.stop:
			enc.Encode(api.StreamError{Error: "the server is shutting down"})
			rc.Flush()
			return
		case <-tick.C:
			// The token may have been revoked or expired meanwhile.
			if _, err := s.Core.Authenticate(r.Context(), raw, ip); err != nil {
				enc.Encode(api.StreamError{Error: tokenward.ErrorMessage(err)})
				rc.Flush()
				return
			}
			if _, err := w.Write([]byte("\n")); err != nil {
				return
			}
			rc.Flush()
		case ev, ok := <-sub.C:
			if !ok {
				if err := sub.Err(); err != nil {
					enc.Encode(api.StreamError{Error: tokenward.ErrorMessage(err)})
					rc.Flush()
				}
				return
			}
			// The token may have been revoked or expired since the last
			// check: no event goes out on a token that is no longer valid
			// (the heartbeat alone would leave up to eventsHeartbeat).
			fresh, err := s.Core.Authenticate(r.Context(), raw, ip)
			if err != nil {
				enc.Encode(api.StreamError{Error: tokenward.ErrorMessage(err)})
				rc.Flush()
				return
			}
			tok = fresh
			if !s.Core.EventVisible(r.Context(), tok, ev) {
				continue
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			rc.Flush()
		}
	}
}
