package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/storetest"
)

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) storetest.AuditStore { return MustOpenDB(t) })
}

func TestAuditCIConformance(t *testing.T) {
	storetest.RunAuditCI(t, storetest.AuditCIBackend{
		Open: func(t *testing.T) (storetest.AuditStore, storetest.AuditSQL) {
			db := MustOpenDB(t)
			conn := mustConn(t, db.URL)
			return db, storetest.AuditSQL{
				Exec: func(t *testing.T, q string) {
					t.Helper()
					if _, err := conn.Exec(t.Context(), q); err != nil {
						t.Fatal(err)
					}
				},
				Int: func(t *testing.T, q string) int64 {
					t.Helper()
					var n int64
					if err := conn.QueryRow(t.Context(), q).Scan(&n); err != nil {
						t.Fatal(err)
					}
					return n
				},
			}
		},
		// A second server's pool on the same database.
		Again: func(t *testing.T, s storetest.AuditStore) storetest.AuditStore {
			return mustOpenURL(t, s.(*postgres.DB).URL)
		},
	})
}

// TestAuditTamperedRowDetected: an audit row edited, deleted or moved in
// the database by raw SQL (by someone with database access but not the
// signing key) is found by verify, with the entry it names.
func TestAuditTamperedRowDetected(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		sql      string
		wantKind audit.Kind // "" for a clean chain
		wantSeq  int64      // 0: any
	}{
		{"intact", ``, "", 0},
		{"modified field", `UPDATE audit_entries SET outcome = 'allowed', reason = '' WHERE seq = 3`, audit.KindModified, 3},
		{"modified CI map", `UPDATE audit_entries SET ci = '{"repository":"evil/repo"}' WHERE seq = 4`, audit.KindModified, 4},
		{"CI no longer JSON", `UPDATE audit_entries SET ci = 'garbage' WHERE seq = 4`, audit.KindModified, 4},
		// Every entry refers to one audit_ci row (migration 0103).
		{"modified shared CI", `UPDATE audit_ci SET ci = '{"repository":"evil/repo"}'`, audit.KindModified, 1},
		{"shared CI deleted", `DELETE FROM audit_ci`, audit.KindModified, 1},
		{"CI reference dropped", `UPDATE audit_entries SET ci_id = NULL WHERE seq = 4`, audit.KindModified, 4},
		{"CI reference moved", `INSERT INTO audit_ci (digest, ci) VALUES ('\x00', '{"repository":"evil/repo"}');
			UPDATE audit_entries SET ci_id = (SELECT id FROM audit_ci WHERE digest = '\x00') WHERE seq = 4`, audit.KindModified, 4},
		{"modified time", `UPDATE audit_entries SET time = time - 1000 WHERE seq = 5`, audit.KindModified, 5},
		{"deleted", `DELETE FROM audit_entries WHERE seq = 3`, audit.KindDeleted, 3},
		{"truncated tail", `DELETE FROM audit_entries WHERE seq >= 5`, audit.KindTruncated, 5},
		{"reordered", `UPDATE audit_entries SET id = id + 1000 WHERE seq = 2`, audit.KindReordered, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.Shared(t).NewDatabase(t)
			db := mustOpenURL(t, url)
			signer := storetest.MustSigner(t)
			b := mustBroker(t, db, signer, 3)
			for i := range 6 {
				e := &tokenward.AuditEntry{Time: time.Date(2026, 12, 4, 10, 0, i, 0, time.UTC), Action: "secret.read", Resource: "payments/prod/KEY",
					Outcome: tokenward.OutcomeAllowed, TokenID: fmt.Sprint("tok_", i), CI: map[string]string{"repository": "acme/api"}}
				if i == 2 {
					e.Outcome, e.Reason = tokenward.OutcomeDenied, "not granted"
				}
				if err := b.Record(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if tt.sql != "" {
				if _, err := mustConn(t, url).Exec(ctx, tt.sql); err != nil {
					t.Fatal(err)
				}
			}
			r := mustVerify(t, db, signer)
			if tt.wantKind == "" {
				if !r.OK() || r.LastSeq != 6 {
					t.Fatalf("got ok=%v last=%d problems %v; want ok, 6", r.OK(), r.LastSeq, r.Problems)
				}
				return
			}
			p := r.First()
			if p == nil {
				t.Fatalf("got no problem; want %s at seq %d", tt.wantKind, tt.wantSeq)
			}
			if p.Kind != tt.wantKind || (tt.wantSeq != 0 && p.Seq != tt.wantSeq) {
				t.Errorf("got %s at seq %d (%s); want %s at seq %d", p.Kind, p.Seq, p.Detail, tt.wantKind, tt.wantSeq)
			}
		})
	}
}

// TestAuditSearchLikeEscapes: LIKE's own wildcards in a query are
// literal, as they are in the glob the query speaks.
func TestAuditSearchLikeEscapes(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	c, _ := audit.NewChain(nil)
	for _, res := range []string{`a%b`, `axb`, `a_b`, `a\b`, `a\\b`} {
		e := &tokenward.AuditEntry{Time: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC), Action: "secret.read", Resource: res, Outcome: tokenward.OutcomeAllowed}
		if err := c.Append(e, func(e *tokenward.AuditEntry) error { return db.AppendAudit(ctx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ glob, want string }{
		{`a%b`, `[a%b]`},
		{`a_b`, `[a_b]`},
		{`a\b`, `[a\b]`},
		{`a\*`, `[a\b a\\b]`},
		{`a*b`, `[a%b axb a_b a\b a\\b]`},
	} {
		got, err := db.SearchAudit(ctx, audit.Query{Resource: tt.glob})
		if err != nil {
			t.Fatal(err)
		}
		var res []string
		for _, e := range got {
			res = append(res, e.Resource)
		}
		if fmt.Sprint(res) != tt.want {
			t.Errorf("resource %q: got %v; want %s", tt.glob, res, tt.want)
		}
	}
}

// TestAuditBatchAllOrNone: a group with one taken seq stores none of its
// entries, and says ECONFLICT.
func TestAuditBatchAllOrNone(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	c, _ := audit.NewChain(nil)
	var es []*tokenward.AuditEntry
	for i := range 4 {
		e := &tokenward.AuditEntry{Time: time.Date(2026, 12, 4, 10, 0, i, 0, time.UTC), Action: "secret.read", Outcome: tokenward.OutcomeAllowed}
		if err := c.Append(e, func(e *tokenward.AuditEntry) error { es = append(es, e); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AppendAudit(ctx, es[2]); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendAuditBatch(ctx, es); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Fatalf("batch over a taken seq: got %v; want ECONFLICT", err)
	}
	n := 0
	for _, err := range db.AuditEntries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("got %d entries after the refused batch; want 1", n)
	}
	if err := db.SyncAudit(); err != nil {
		t.Fatalf("sync: got %v; want nil", err)
	}
}

// TestAuditTwoServersOneChain: two servers (two pools, two brokers, one
// audit key) recording in turn. Each server's own idea of the head is stale
// every time the other wrote last; the database chains (AppendChained), so
// each entry still gets the next seq: one chain holding every entry, which
// verifies in full.
func TestAuditTwoServersOneChain(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	signer := storetest.MustSigner(t)
	db := mustOpenURL(t, url)
	brokers := []*audit.Broker{mustBroker(t, db, signer, 4), mustBroker(t, mustOpenURL(t, url), signer, 4)}
	const n = 10
	for i := range n {
		e := &tokenward.AuditEntry{Time: time.Date(2026, 12, 4, 10, 0, i, 0, time.UTC), Action: "secret.read", Outcome: tokenward.OutcomeAllowed,
			RequestID: fmt.Sprint("server-", i%2, "-", i)}
		if err := brokers[i%2].Record(ctx, e); err != nil {
			t.Fatalf("record %d on server %d: %v", i, i%2, err)
		}
		if e.Seq != int64(i+1) {
			t.Fatalf("record %d on server %d: got seq %d; want %d", i, i%2, e.Seq, i+1)
		}
	}
	for _, b := range brokers {
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if r := mustVerify(t, db, signer); !r.OK() || r.Entries != n || r.LastSeq != n {
		t.Fatalf("got ok=%v entries=%d last=%d problems=%v; want ok, %d, %d", r.OK(), r.Entries, r.LastSeq, r.Problems, n, n)
	}
}

// mustBroker opens a broker on s that checkpoints every `every` entries.
func mustBroker(tb testing.TB, s audit.Store, signer *audit.Signer, every int64) *audit.Broker {
	tb.Helper()
	b := audit.NewBroker(s, signer)
	b.CheckpointEvery = every
	if err := b.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return b
}

// mustVerify verifies the whole trail stored in db.
func mustVerify(tb testing.TB, db *postgres.DB, signer *audit.Signer) *audit.Report {
	tb.Helper()
	ctx := context.Background()
	cps, err := db.AuditCheckpoints(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := audit.Verify(db.AuditEntries(ctx), cps, signer.PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
