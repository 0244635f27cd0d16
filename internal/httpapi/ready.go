package httpapi

import (
	"context"
	"net/http"
	"time"
)

// pinger is a store that can tell whether its database answers; the
// readiness route (GET /v1/ready, /readyz) asks it. internal/sqlite and
// internal/postgres implement it. Ping returns within ctx, and its error
// never holds a connection string. A store without Ping is always ready.
type pinger interface {
	Ping(ctx context.Context) error
}

// readyTimeout bounds the readiness check: a probe must not hang on a
// database that does not answer.
const readyTimeout = time.Second

// checkReady pings the store, logging when readiness changes (a probe
// every few seconds must not log every time).
func (s *Server) checkReady(ctx context.Context) bool {
	p, ok := s.Core.Store.(pinger)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	err := p.Ping(ctx)
	if was := s.unready.Swap(err != nil); was != (err != nil) {
		if err != nil {
			s.Logger.Warn("not ready: the database does not answer", "err", err)
		} else {
			s.Logger.Info("ready: the database answers again")
		}
	}
	return err == nil
}

// ready is the readiness check: 200 when the database answers within a
// second, else 503 with a reason that names no host or URL. Liveness is
// /v1/health (/healthz): the process is up.
func (s *Server) ready(c *call) (int, any, error) {
	if !s.checkReady(c.r.Context()) {
		return http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database unreachable"}, nil
	}
	return http.StatusOK, map[string]string{"status": "ready"}, nil
}

// RegisterReadiness adds the gauge tokenward_database_up to m: 1 when the
// store's database answers within a second at scrape time, else 0.
func (s *Server) RegisterReadiness(m *Metrics) {
	m.GaugeFunc("tokenward_database_up",
		"1 when the store's database answers a ping within a second at scrape time (as GET /v1/ready), else 0.",
		func() float64 {
			if s.checkReady(context.Background()) {
				return 1
			}
			return 0
		})
}
