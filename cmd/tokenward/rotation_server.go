//go:build !tokenward_client

package main

import (
	"context"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/rotate/pgrotate"
)

// rotationServerConfig is the rotation scheduler's configuration.
type rotationServerConfig struct {
	Interval    time.Duration
	Concurrency int
	Backoff     time.Duration
	MaxAttempts int
}

// Validate checks the flags.
func (c *rotationServerConfig) Validate() error {
	switch {
	case c.Interval < 100*time.Millisecond || c.Interval > 24*time.Hour:
		return usageError("--rotation-interval must be from 100ms to 24h")
	case c.Concurrency < 1 || c.Concurrency > 32:
		return usageError("--rotation-concurrency must be from 1 to 32")
	case c.Backoff < 10*time.Millisecond || c.Backoff > 24*time.Hour:
		return usageError("--rotation-retry-backoff must be from 10ms to 24h")
	case c.MaxAttempts < 1 || c.MaxAttempts > 100:
		return usageError("--rotation-max-attempts must be from 1 to 100")
	}
	return nil
}

// crashEnv names the test-only crash point: the server kills itself with
// SIGKILL there, so tests can prove a rotation survives a crash at every
// step. Points: after:<step> (the step recorded done: create, set, test,
// finish, revoke), pending:stored (value stored, step not recorded),
// promote:done (labels moved, finish not recorded).
const crashEnv = "TOKENWARD_TEST_CRASH_AT"

// rotationServerFeature runs the rotation machine and scheduler in the
// server: due rotations (with jitter), retries with backoff, revocation
// when grace ends, and Resume of whatever a crash interrupted — the last
// three on the leader only.
func rotationServerFeature(m *Main, f *pflag.FlagSet) (func(*serverConfig) error, func(context.Context, *serverRun) error) {
	cfg := rotationServerConfig{Interval: 30 * time.Second, Concurrency: 4, Backoff: time.Minute, MaxAttempts: 5}
	f.DurationVar(&cfg.Interval, "rotation-interval", cfg.Interval, "how often the scheduler looks for due rotations, retries and grace ends")
	f.IntVar(&cfg.Concurrency, "rotation-concurrency", cfg.Concurrency, "rotations run at once by the scheduler and by default in bulk")
	f.DurationVar(&cfg.Backoff, "rotation-retry-backoff", cfg.Backoff, "first retry delay of a failed rotation step (doubles, up to 6h)")
	f.IntVar(&cfg.MaxAttempts, "rotation-max-attempts", cfg.MaxAttempts, "tries of a step before the rotation rolls back")
	check := func(*serverConfig) error { return cfg.Validate() }
	return check, func(ctx context.Context, r *serverRun) error {
		log := r.logger.WithGroup("rotation")
		secrets, err := r.core.RotationSecrets()
		if err != nil {
			return err
		}
		rotators := map[string]rotate.Rotator{
			"random":    &rotate.Random{},
			"tokenward": &rotate.Tokenward{Tokens: r.core.RotationTokens()},
			"postgres":  &pgrotate.Rotator{Secrets: secrets},
			"webhook":   &rotate.Webhook{Secrets: secrets},
			"exec":      &rotate.Exec{},
		}
		var store rotate.Store = r.db.Rotations()
		var sec rotate.Secrets = secrets
		if point := m.Getenv(crashEnv); point != "" {
			log.Warn("test crash point set: this server kills itself during a rotation", "point", point)
			store = crashStore{Store: store, point: point}
			sec = crashSecrets{Secrets: sec, point: point}
		}
		mach := rotate.NewMachine(store, sec, rotators)
		mach.Logger = r.logger
		mach.Backoff, mach.MaxAttempts = cfg.Backoff, cfg.MaxAttempts
		if pg, ok := r.db.(pgStorage); ok {
			// Servers sharing the database take turns on a rotation.
			mach.Claims = pg.DB.Rotations()
		}
		var alerts atomic.Int64
		mach.Alert = func(ctx context.Context, rot *rotate.Rotation) {
			alerts.Add(1)
			// The record's error never holds a value.
			log.Error("rotation alert", "id", rot.ID, "secret", rot.Path, "step", string(rot.Step),
				"attempt", rot.Attempt, "next_at", rot.NextAt, "error", rot.Error)
		}
		sched := &rotate.Scheduler{Machine: mach, Concurrency: cfg.Concurrency}
		r.core.Rotation = &core.Rotation{Machine: mach, Scheduler: sched, Catalog: r.db, BulkConcurrency: cfg.Concurrency, BulkJobs: r.db.BulkJobs()}
		if r.metrics != nil {
			r.metrics.OnScrape(rotationMetrics(r.db.Rotations(), mach))
		}

		// Resume and the scheduler run on the leader only; a rotation
		// asked for through the API runs on the server that got the
		// request, and the store's claim keeps two servers from running
		// one rotation at once.
		r.lead.add("rotation scheduler", func(ctx context.Context) {
			// Resume first: a crash (of this server, or of the old
			// leader) may have left rotations mid-step.
			if err := mach.Resume(ctx); err != nil && ctx.Err() == nil {
				log.Warn("resume in-flight rotations", "error", tokenward.ErrorMessage(err))
			}
			sched.Run(ctx, cfg.Interval)
		})
		log.Info("rotation scheduler", "interval", cfg.Interval, "concurrency", cfg.Concurrency)
		return nil
	}
}

// rotationMetrics writes rotations by state and failed steps at scrape
// time.
func rotationMetrics(store rotate.Store, m *rotate.Machine) func(io.Writer) {
	return func(w io.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		httpapi.WriteValue(w, "tokenward_rotation_step_failures_total", httpapi.CounterType, "Failed rotation steps since the server started (each alerted).", float64(m.Failures.Load()))
		hist, err := store.History(ctx, "", 0)
		if err != nil {
			return
		}
		counts := map[string]float64{"in_flight": 0, "done": 0, "failed": 0}
		for _, r := range hist {
			switch {
			case r.Step.InFlight():
				counts["in_flight"]++
			case r.Step == rotate.StepDone:
				counts["done"]++
			default:
				counts["failed"]++
			}
		}
		httpapi.WriteFamily(w, "tokenward_rotations", httpapi.GaugeType, "Rotations by state: in_flight, done, failed (failed includes rolled back).", "state", counts)
	}
}

// die kills this process with SIGKILL (on Unix; TerminateProcess on
// Windows): no deferred function, no flush, like a crash.
func die() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Kill()
	}
	select {} // never return into the rotation
}

// stepDone maps the step a rotation moves to onto the one just done.
var stepDone = map[rotate.Step]string{
	rotate.StepSet: "create", rotate.StepTest: "set", rotate.StepFinish: "test",
	rotate.StepRevoke: "finish", rotate.StepDone: "revoke",
}

// crashStore dies right after recording the step named by point.
type crashStore struct {
	rotate.Store
	point string
}

func (s crashStore) UpdateRotation(ctx context.Context, r *rotate.Rotation) error {
	err := s.Store.UpdateRotation(ctx, r)
	if err == nil && s.point == "after:"+stepDone[r.Step] {
		die()
	}
	return err
}

// crashSecrets dies inside a step, after its storage change and before the
// step is recorded.
type crashSecrets struct {
	rotate.Secrets
	point string
}

func (s crashSecrets) PutPending(ctx context.Context, path, rotationID string, value []byte) (int, error) {
	n, err := s.Secrets.PutPending(ctx, path, rotationID, value)
	if err == nil && s.point == "pending:stored" {
		die()
	}
	return n, err
}

func (s crashSecrets) Promote(ctx context.Context, path string, n int) error {
	err := s.Secrets.Promote(ctx, path, n)
	if err == nil && s.point == "promote:done" {
		die()
	}
	return err
}
