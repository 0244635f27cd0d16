package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// TestTokenLeasesLockKeySpace: a lease's creation locks its token's
// leases in the two-key space (class "tw" 0x0002, then the token id's
// hashtext), never on a 64-bit key, where the server lock that every
// server holds for its life lives. A session holding that two-key lock
// holds the creation up; one holding the old 64-bit key does not.
func TestTokenLeasesLockKeySpace(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	db := mustOpenURL(t, url)
	ctx := t.Context()
	if err := db.PutDynamicSource(ctx, &tokenward.DynamicSource{Project: "acme", Env: "prod", Name: "db", Kind: "postgres",
		Config: map[string]string{"admin_secret": "acme/prod/A"}, TTL: time.Minute, MaxTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	now := time.Now().UTC()
	tests := []struct {
		name, lock, unlock string
		blocks             bool
	}{
		{"two keys", `SELECT pg_advisory_lock(x'74770002'::int, hashtext($1))`, `SELECT pg_advisory_unlock(x'74770002'::int, hashtext($1))`, true},
		{"64-bit key", `SELECT pg_advisory_lock(hashtextextended('tokenward lease token ' || $1, 0))`,
			`SELECT pg_advisory_unlock(hashtextextended('tokenward lease token ' || $1, 0))`, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := "tok_" + tt.name[:3]
			if _, err := holder.Exec(ctx, tt.lock, tok); err != nil {
				t.Fatal(err)
			}
			l := &tokenward.Lease{ID: "lease_" + string(rune('a'+i)), Project: "acme", Env: "prod", Name: "db", Kind: "postgres",
				Role: "tw_" + string(rune('a'+i)), TokenID: tok, State: tokenward.LeaseCreating, CreatedAt: now,
				ExpiresAt: now.Add(time.Minute), MaxExpiresAt: now.Add(time.Minute)}
			wait := 500 * time.Millisecond
			if !tt.blocks {
				wait = 10 * time.Second
			}
			cctx, cancel := context.WithTimeout(ctx, wait)
			err := db.CreateLease(cctx, l, tokenward.LeaseLimits{})
			cancel()
			if blocked := errors.Is(err, context.DeadlineExceeded) || tokenward.ErrorCode(err) == tokenward.EUNAVAILABLE; blocked != tt.blocks || (!blocked && err != nil) {
				t.Fatalf("CreateLease while another session holds the lock: got %v; want blocked %v", err, tt.blocks)
			}
			if _, err := holder.Exec(ctx, tt.unlock, tok); err != nil {
				t.Fatal(err)
			}
			if tt.blocks {
				if err := db.CreateLease(ctx, l, tokenward.LeaseLimits{}); err != nil {
					t.Fatalf("CreateLease once the lock is released: %v", err)
				}
			}
		})
	}
}
