package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/storetest"
)

func TestMonitorConformance(t *testing.T) {
	storetest.RunMonitor(t, func(t *testing.T) storetest.MonitorStore {
		return MustOpenDB(t)
	})
}

// TestPurgeArchivesAcrossServers: servers purging at once each report only
// the archives they deleted, so every due archive is reported exactly once
// (one purge notice, one audit entry) and the others stay.
func TestPurgeArchivesAcrossServers(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	servers := []interface {
		PurgeArchive(ctx context.Context, project, env string, now time.Time) (*monitor.Archive, error)
		Archives(ctx context.Context) ([]*monitor.Archive, error)
	}{mustOpenURL(t, url), mustOpenURL(t, url)}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	conn := mustConn(t, url)
	var due []string
	for i := range 30 {
		purgeAt := now.Add(time.Duration(i-20) * time.Hour) // 21 due, 9 not
		env := fmt.Sprintf("env%02d", i)
		if !purgeAt.After(now) {
			due = append(due, env)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO archived_envs (project, env, secrets, archived_at, archived_by, purge_at) VALUES ('p', $1, 0, $2, 'tok_admin', $3)`,
			env, now.Add(-time.Duration(30-i)*time.Hour).UnixNano(), purgeAt.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var gone []string
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for j := range 30 {
				a, err := servers[i%2].PurgeArchive(ctx, "p", fmt.Sprintf("env%02d", (i*7+j)%30), now)
				if err != nil {
					t.Error(err)
					return
				}
				if a != nil {
					mu.Lock()
					gone = append(gone, a.Env)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(gone)
	if !slices.Equal(gone, due) {
		t.Fatalf("purged over two servers: got %v; want each due archive once: %v", gone, due)
	}
	left, err := servers[0].Archives(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, a := range left {
		kept = append(kept, a.Env)
	}
	if want := []string{"env21", "env22", "env23", "env24", "env25", "env26", "env27", "env28", "env29"}; !slices.Equal(kept, want) {
		t.Fatalf("left: got %v; want %v", kept, want)
	}
}
