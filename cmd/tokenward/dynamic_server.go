//go:build !tokenward_client

package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/dynamic"
	"github.com/tokenward/tokenward/internal/httpapi"
)

// dynamicServerConfig is the lease engine's configuration.
type dynamicServerConfig struct {
	SweepInterval, OrphanAfter time.Duration
	MaxPerSource, PerToken     int
}

func (c *dynamicServerConfig) Validate() error {
	switch {
	case c.SweepInterval < 100*time.Millisecond || c.SweepInterval > time.Hour:
		return usageError("--lease-sweep-interval must be from 100ms to 1h")
	case c.OrphanAfter < time.Second || c.OrphanAfter > 24*time.Hour:
		return usageError("--lease-orphan-after must be from 1s to 24h")
	case c.MaxPerSource < 1 || c.MaxPerSource > 100_000:
		return usageError("--lease-max-per-source must be from 1 to 100000")
	case c.PerToken < 1 || c.PerToken > 100_000:
		return usageError("--lease-max-per-token must be from 1 to 100000")
	}
	return nil
}

// dynamicServerFeature serves dynamic sources and leases: the engine with
// the postgres kind, revocation of a revoked token's leases, the sweep (on
// the leader: expired leases, revoked tokens' leases, orphaned creations,
// retries) and the tokenward_leases gauge.
func dynamicServerFeature(m *Main, f *pflag.FlagSet) (func(*serverConfig) error, func(context.Context, *serverRun) error) {
	cfg := dynamicServerConfig{SweepInterval: 10 * time.Second, OrphanAfter: 2 * time.Minute, MaxPerSource: dynamic.DefaultMaxLeasesPerSource, PerToken: dynamic.DefaultMaxLeasesPerToken}
	f.DurationVar(&cfg.SweepInterval, "lease-sweep-interval", cfg.SweepInterval, "how often the leader revokes expired and orphaned leases and retries failed revocations")
	f.DurationVar(&cfg.OrphanAfter, "lease-orphan-after", cfg.OrphanAfter, "a lease still being created this long after it was recorded is taken for the orphan of a crash, and its role dropped")
	f.IntVar(&cfg.MaxPerSource, "lease-max-per-source", cfg.MaxPerSource, "live leases of one dynamic source (a source's --max-leases wins)")
	f.IntVar(&cfg.PerToken, "lease-max-per-token", cfg.PerToken, "live leases of one token")
	check := func(*serverConfig) error { return cfg.Validate() }
	return check, func(ctx context.Context, r *serverRun) error {
		log := r.logger.WithGroup("dynamic")
		secrets, err := r.core.RotationSecrets()
		if err != nil {
			return err
		}
		pg := &dynamic.Postgres{Secrets: secrets}
		r.onClose(pg.Close)
		e := dynamic.New(r.db, map[string]dynamic.Kind{"postgres": pg})
		e.Logger = log
		e.Limits = tokenward.LeaseLimits{PerSource: cfg.MaxPerSource, PerToken: cfg.PerToken}
		e.Record = r.api.Record
		e.StaleAfter = cfg.OrphanAfter
		e.CreateTimeout = min(e.CreateTimeout, cfg.OrphanAfter/2)
		if point := m.Getenv(crashEnv); point == "lease:created" {
			log.Warn("test crash point set: this server kills itself after creating a lease's role", "point", point)
			e.AfterCreate = func(*tokenward.Lease) { die() }
		}
		r.api.Dynamic = e
		// A retired environment gets no new source or lease, and its
		// sources' live leases are revoked with it.
		e.Retired = r.core.RefuseRetired
		if r.core.Monitoring != nil {
			r.core.Monitoring.RetireHooks = append(r.core.Monitoring.RetireHooks, e.RevokeScope)
			r.core.Monitoring.PurgeHooks = append(r.core.Monitoring.PurgeHooks, e.DeleteScope)
			// No lease is made between the hook's listing and the archive.
			r.core.Monitoring.HoldScope = r.db.HoldScope
		}
		r.core.TokenRevoked = func(ctx context.Context, id string) {
			// Bounded: the token is revoked already, and what does not
			// finish here (a database down, another server's revocation)
			// the sweep catches.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			defer cancel()
			if n, err := e.RevokeToken(ctx, id); err != nil {
				log.Warn("revoke the leases of a revoked token", "token", id, "error", tokenward.ErrorMessage(err))
			} else if n > 0 {
				log.Info("revoked the leases of a revoked token", "token", id, "leases", n)
			}
		}
		if r.metrics != nil {
			r.metrics.OnScrape(leaseMetrics(e))
		}
		r.lead.add("lease sweep", func(ctx context.Context) { e.RunSweeper(ctx, cfg.SweepInterval) })
		return nil
	}
}

// leaseMetrics writes the tokenward_leases gauge, read at scrape time (its
// # HELP and # TYPE also when no source has a lease).
func leaseMetrics(e *dynamic.Engine) func(io.Writer) {
	return func(w io.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		live, err := e.LiveLeases(ctx)
		if err != nil {
			return
		}
		values := make(map[string]float64, len(live))
		for src, n := range live {
			values[src] = float64(n)
		}
		httpapi.WriteFamily(w, "tokenward_leases", httpapi.GaugeType, "Live leases of dynamic sources (creating, active or being revoked), by source.", "source", values)
	}
}
