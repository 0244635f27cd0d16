//go:build !tokenward_client

package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward/internal/httpapi"
)

// elector picks the one server of those sharing a store that runs the
// background jobs. Lead waits until this server leads (or ctx ends) and
// returns a context that ends with the leadership; resign gives it up.
type elector interface {
	Lead(ctx context.Context) (leading context.Context, resign func(), err error)
}

// soleServer is SQLite's elector: one server per data directory (its
// audit journal is locked), so it always leads.
type soleServer struct{}

func (soleServer) Lead(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	return lctx, cancel, nil
}

// leaderJob is a background job that runs on the leader only, until its
// context ends.
type leaderJob struct {
	name string
	run  func(ctx context.Context)
}

// leadership runs the leader's jobs while this server leads: every job
// starts when the leadership is won and is stopped, and waited for, when
// it is lost, before this server campaigns again.
type leadership struct {
	log     *slog.Logger
	jobs    []leaderJob
	leading atomic.Bool
	// won is when the current leadership began (Unix nanoseconds).
	won atomic.Int64
}

// wonAt is when the current leadership began: a job started by it reads
// the time before any other job of the same leadership did anything.
func (l *leadership) wonAt() time.Time { return time.Unix(0, l.won.Load()) }

// add registers a job; call it before run.
func (l *leadership) add(name string, run func(ctx context.Context)) {
	l.jobs = append(l.jobs, leaderJob{name, run})
}

// run campaigns until ctx ends.
func (l *leadership) run(ctx context.Context, e elector) {
	names := make([]string, len(l.jobs))
	for i, j := range l.jobs {
		names[i] = j.name
	}
	for {
		lctx, resign, err := e.Lead(ctx)
		if err != nil {
			return // ctx ended
		}
		l.won.Store(time.Now().UnixNano())
		l.leading.Store(true)
		l.log.Info("leading: this server runs the background jobs", "jobs", names)
		var wg sync.WaitGroup
		for _, j := range l.jobs {
			wg.Go(func() { j.run(lctx) })
		}
		<-lctx.Done()
		wg.Wait()
		resign()
		l.leading.Store(false)
		if ctx.Err() != nil {
			l.log.Info("no longer leading: shutting down")
			return
		}
		l.log.Warn("no longer leading: the background jobs stopped; campaigning again", "cause", context.Cause(lctx))
	}
}

// registerMetrics adds the tokenward_leader gauge to m.
func (l *leadership) registerMetrics(m *httpapi.Metrics) {
	m.GaugeFunc("tokenward_leader",
		"1 while this server leads the servers sharing its database (runs the rotation scheduler, hygiene, rotation announcements), else 0.",
		func() float64 {
			if l.leading.Load() {
				return 1
			}
			return 0
		})
}
