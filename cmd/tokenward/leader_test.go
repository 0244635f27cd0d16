//go:build !tokenward_client

package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
)

// leaderServer is one server's leadership over a shared database, with a
// job that counts its runs and marks while it runs.
type leaderServer struct {
	l       *leadership
	running atomic.Bool
	starts  atomic.Int32
	stop    func()
}

func startLeaderServer(t *testing.T, url string, running *atomic.Int32) *leaderServer {
	t.Helper()
	db := postgres.NewDB(url)
	db.LockCheckInterval = 20 * time.Millisecond
	if err := db.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := &leaderServer{l: &leadership{log: slog.New(slog.DiscardHandler)}}
	s.l.add("job", func(ctx context.Context) {
		s.starts.Add(1)
		running.Add(1)
		s.running.Store(true)
		<-ctx.Done()
		s.running.Store(false)
		running.Add(-1)
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.l.run(ctx, electorOf(pgStorage{db})) })
	s.stop = sync.OnceFunc(func() { cancel(); wg.Wait(); db.Close() })
	t.Cleanup(s.stop)
	return s
}

// TestLeadershipRunsJobsOnOneServer: of two servers, one runs the
// leader's jobs; when its leader session ends, its jobs stop and one
// server leads again; when the leader shuts down, it stops its jobs
// before the other takes over.
func TestLeadershipRunsJobsOnOneServer(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	var running atomic.Int32
	servers := []*leaderServer{startLeaderServer(t, url, &running), startLeaderServer(t, url, &running)}
	leaderOf := func() (*leaderServer, *leaderServer) {
		t.Helper()
		var leader, other *leaderServer
		waitUntil(t, "one leader", func() bool {
			leader, other = nil, nil
			for _, s := range servers {
				if s.l.leading.Load() && s.running.Load() {
					leader = s
				} else {
					other = s
				}
			}
			// After a session ended under it, the old leader's jobs run
			// on until its next check: wait for them to stop too.
			return leader != nil && other != nil && running.Load() == 1
		})
		return leader, other
	}
	first, second := leaderOf()
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// The leader's session ends (as when the database or an
	// administrator ends it): its jobs stop; one server leads again.
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = 29815 AND objid = 1818583396 AND objsubid = 1`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a second leadership", func() bool { return first.starts.Load()+second.starts.Load() == 2 })
	next, _ := leaderOf()
	// The leader shuts down: the other leads.
	next.stop()
	if next.running.Load() || next.l.leading.Load() {
		t.Fatal("a stopped server still runs the leader's jobs")
	}
	// It stopped its jobs before it gave the lock up: no overlap.
	waitUntil(t, "the other server to lead", func() bool {
		for _, s := range servers {
			if s != next && s.l.leading.Load() && s.running.Load() {
				return true
			}
		}
		return false
	})
	if n := running.Load(); n != 1 {
		t.Fatalf("jobs running after a clean handover: got %d; want 1", n)
	}
}

// waitUntil polls cond until it holds, failing after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up", what)
		}
	}
}
