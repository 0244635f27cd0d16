package postgres

import (
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// TestOwnWriteInsideASelectMovesTheClock: a statement whose command tag is
// SELECT but that writes through a data-modifying WITH — the hygiene job's
// stale-token revocation, RevokeStaleToken — moves this server's clock
// before it returns, as every other write does (#20): the next request on
// this server must not be answered from a read cached before the
// revocation, notification or not. It did not: the tracer took the SELECT
// tag for a read, and the revoked token stayed cached until a notification
// came (never, with the listener down or late).
func TestOwnWriteInsideASelectMovesTheClock(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t)
	db.listener.close() // no notifications from here on: only the tracer moves the clock
	db.listener = nil
	db.clock.up()
	now := time.Now()
	tok := &tokenward.Token{ID: "tok_stale", Name: "stale", Kind: tokenward.TokenService,
		Grants: tokenward.Grants{tokenward.MustParseGrant("read:p/e/*")}, CreatedAt: now.Add(-time.Hour)}
	if err := db.CreateToken(ctx, tok, [32]byte{7}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Token(ctx, tok.ID); err != nil || !got.RevokedAt.IsZero() {
		t.Fatalf("token before: got %+v, %v; want active (and now cached)", got, err)
	}
	before, _ := db.Generation()
	revoked, err := db.RevokeStaleToken(ctx, tok.ID, now, now)
	if err != nil || !revoked {
		t.Fatalf("RevokeStaleToken: got %v, %v; want revoked", revoked, err)
	}
	if after, ok := db.Generation(); !ok || after <= before {
		t.Errorf("generation after RevokeStaleToken: %d -> %d (ok %v); want it moved", before, after, ok)
	}
	if got, err := db.Token(ctx, tok.ID); err != nil || got.RevokedAt.IsZero() {
		t.Errorf("token right after its revocation on this server: got revoked_at %v, %v; want revoked (not the cached record)", got.RevokedAt, err)
	}

	// Reads, a WITH that only reads among them, do not move it.
	for _, q := range []string{
		`SELECT count(*) FROM tokens`,
		`WITH r AS (SELECT id FROM tokens) SELECT count(*) FROM r`,
		`SELECT '(UPDATE tokens SET x)' IS NOT NULL`, // looks like a write, but no WITH: a read
	} {
		before, _ := db.Generation()
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if after, _ := db.Generation(); after != before {
			t.Errorf("%s: generation %d -> %d; want unchanged (a read)", q, before, after)
		}
	}
}

// TestWritesUnderSelect: which statements the tracer counts as writes
// although their command tag will say SELECT.
func TestWritesUnderSelect(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want bool
	}{
		{"WITH r AS (UPDATE tokens SET revoked_at = $1 RETURNING id) SELECT EXISTS (SELECT 1 FROM r)", true},
		{"\n\t with d as materialized ( delete from leases where id = $1 returning id) select count(*) from d", true},
		{"WITH a AS (SELECT 1), b AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT * FROM b", true},
		{"WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE) SELECT 1", true},
		{"WITH r AS (SELECT id FROM tokens) SELECT count(*) FROM r", false},
		{"WITH r AS (SELECT id FROM t WHERE (updated_at > $1) OR (deleted)) SELECT 1", false},
		{"WITH r AS (UPDATE\tt SET x = 1 RETURNING 1) SELECT 1", true},
		{"SELECT id FROM secrets WHERE project = $1 FOR UPDATE", false},
		{"SELECT '(UPDATE tokens SET x)'", false},
		{"UPDATE tokens SET revoked_at = $1", false}, // its own tag says it writes
		{"", false},
	} {
		if got := writesUnderSelect(tc.sql); got != tc.want {
			t.Errorf("writesUnderSelect(%q) = %v; want %v", tc.sql, got, tc.want)
		}
	}
}
