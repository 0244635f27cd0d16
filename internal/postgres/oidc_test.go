package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/storetest"
)

func TestOIDCConformance(t *testing.T) {
	storetest.RunOIDC(t, func(t *testing.T) storetest.OIDCStore { return MustOpenDB(t) })
}

// TestReplayAcrossServers: two servers (two pools) on one database. An
// identity token exchanged on one is a replay on the other, and of
// concurrent exchanges of one token spread over both, exactly one wins.
func TestReplayAcrossServers(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	servers := []interface {
		SeenIdentityToken(ctx context.Context, id string, until, now time.Time) (bool, error)
	}{mustOpenURL(t, url), mustOpenURL(t, url)}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	until := now.Add(5 * time.Minute)

	if seen, err := servers[0].SeenIdentityToken(ctx, "jti:once", until, now); err != nil || seen {
		t.Fatalf("server A, first exchange: got seen=%v, %v; want false, nil", seen, err)
	}
	if seen, err := servers[1].SeenIdentityToken(ctx, "jti:once", until, now.Add(time.Second)); err != nil || !seen {
		t.Fatalf("server B, same token: got seen=%v, %v; want true (a replay), nil", seen, err)
	}

	const perServer = 6
	for round := range 10 {
		id := fmt.Sprint("jti:race-", round)
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for i := range 2 * perServer {
			wg.Go(func() {
				seen, err := servers[i%2].SeenIdentityToken(ctx, id, until, now)
				if err != nil {
					t.Error(err)
					return
				}
				if !seen {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if got := fresh.Load(); got != 1 {
			t.Fatalf("round %d: %d of %d exchanges over two servers were accepted; want exactly 1", round, got, 2*perServer)
		}
	}
}
