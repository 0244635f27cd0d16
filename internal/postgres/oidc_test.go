package postgres_test

import (
	"context"
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
	a, b := mustOpenURL(t, url), mustOpenURL(t, url)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	until := now.Add(5 * time.Minute)

	if seen, err := a.SeenIdentityToken(ctx, "jti:once", until, now); err != nil || seen {
		t.Fatalf("server A, first exchange: got seen=%v, %v; want false, nil", seen, err)
	}
	if seen, err := b.SeenIdentityToken(ctx, "jti:once", until, now.Add(time.Second)); err != nil || !seen {
		t.Fatalf("server B, same token: got seen=%v, %v; want true (a replay), nil", seen, err)
	}

	storetest.ReplayRace(t, a, b)
}
