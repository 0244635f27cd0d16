package storetest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
)

// AuditSQL reaches under a store's API, for the tests of how entries are
// stored: Exec runs statements, Int a query for one integer. Queries hold
// their values literally.
type AuditSQL struct {
	Exec func(t *testing.T, query string)
	Int  func(t *testing.T, query string) int64
}

// AuditCIBackend opens the stores RunAuditCI tests.
type AuditCIBackend struct {
	// Open returns a fresh, empty, open store (closed by the suite's
	// cleanup) and SQL on its database.
	Open func(t *testing.T) (AuditStore, AuditSQL)
	// Again returns another store on s's database, as a second server
	// opens it (closed by the suite's cleanup).
	Again func(t *testing.T, s AuditStore) AuditStore
}

// RunAuditCI tests that an entry's CI facts are stored once in audit_ci
// and referenced by the entries (migration 0103), with every reader and
// verify seeing the same entries as when they were inline.
func RunAuditCI(t *testing.T, b AuditCIBackend) {
	tests := []struct {
		name string
		fn   func(*testing.T, AuditCIBackend)
	}{
		{"StoredOnce", testAuditCIStoredOnce},
		{"MixedWithInline", testAuditCIMixedWithInline},
		{"RollbackForgets", testAuditCIRollbackForgets},
		{"TwoStores", testAuditCITwoStores},
		// Not about CI, but this suite is the one that reaches under the
		// store's API, as someone with write access to the database does.
		{"PruneRefusesATamperedAnchor", testAuditPruneTamperedAnchor},
	}
	for _, tc := range tests {
		t.Run("AuditCI"+tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

func (b AuditCIBackend) open(t *testing.T) (AuditStore, AuditSQL) {
	s, q := b.Open(t)
	t.Cleanup(func() { s.Close() })
	return s, q
}

// jitFacts is a JIT token's CI facts, as the OIDC exchange records them.
func jitFacts(run string) map[string]string {
	return map[string]string{"issuer": "https://token.actions.githubusercontent.com", "repository": "acme/api", "ref": "refs/heads/main",
		"run_id": run, "workflow": "acme/api/.github/workflows/deploy.yml@refs/heads/main", "actor": "octocat",
		"sha": "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c", "environment": "production", "subject": "repo:acme/api:environment:production"}
}

// readAll returns s's entries in insertion order.
func readAll(t *testing.T, s AuditStore) []*tokenward.AuditEntry {
	t.Helper()
	var out []*tokenward.AuditEntry
	for e, err := range s.AuditEntries(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// sameCI reports the first entry of got whose CI differs from want's (by
// seq), or "".
func sameCI(got []*tokenward.AuditEntry, want map[int64]map[string]string) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d entries; want %d", len(got), len(want))
	}
	for _, e := range got {
		if w, ok := want[e.Seq]; !ok || !maps.Equal(e.CI, w) {
			return fmt.Sprintf("entry %d: got CI %v; want %v", e.Seq, e.CI, w)
		}
	}
	return ""
}

// testAuditCIStoredOnce records a JIT token's reads through the broker:
// its facts are in audit_ci once, every row refers to them, and entries,
// searches, verify and an export's verify see them as recorded. A token
// in a CI value is redacted before it is stored.
func testAuditCIStoredOnce(t *testing.T, be AuditCIBackend) {
	ctx := context.Background()
	s, raw := be.open(t)
	signer := MustSigner(t)
	br := audit.NewBroker(s, signer)
	br.CheckpointEvery = 10
	if err := br.Open(ctx); err != nil {
		t.Fatal(err)
	}
	secret, err := tokenward.NewTokenSecret(tokenward.TokenJIT)
	if err != nil {
		t.Fatal(err)
	}
	shared := jitFacts("42") // a cached token's map, in every entry
	leaky := map[string]string{"repository": "acme/api", "ref": "refs/heads/" + secret}
	want := map[int64]map[string]string{}
	var leakySeq int64
	for i := range 40 {
		e := &tokenward.AuditEntry{Time: auditT0, Action: "secret.read", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed,
			TokenID: "tok_jit", TokenName: "jit:deploy", CI: shared}
		switch {
		case i%10 == 1:
			e.CI = jitFacts("42") // equal facts, another map
		case i%10 == 2:
			e.TokenID, e.CI = "tok_other", jitFacts("43")
		case i%10 == 3:
			e.TokenID, e.CI = "", nil
		case i == 4:
			e.CI = leaky
		}
		if err := br.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		want[e.Seq] = e.CI // as recorded: redacted
		if i == 4 {
			leakySeq = e.Seq
		}
	}
	if err := br.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if want[leakySeq]["ref"] == leaky["ref"] {
		t.Fatal("test setup: the broker did not redact the token in a CI value")
	}

	for _, c := range []struct {
		query string
		want  int64
	}{
		{`SELECT count(*) FROM audit_ci`, 3}, // run 42, run 43, the redacted one
		{`SELECT count(*) FROM audit_entries WHERE ci_id IS NOT NULL`, 36},
		{`SELECT count(*) FROM audit_entries WHERE ci <> '{}'`, 0},
		{`SELECT count(*) FROM audit_ci WHERE ci LIKE '%"run_id":"42"%'`, 1},
		{`SELECT count(*) FROM audit_ci WHERE ci LIKE '%` + secret + `%'`, 0},
		{`SELECT count(*) FROM audit_entries WHERE ci LIKE '%` + secret + `%'`, 0},
	} {
		if got := raw.Int(t, c.query); got != c.want {
			t.Errorf("%s: got %d; want %d", c.query, got, c.want)
		}
	}

	entries := readAll(t, s)
	if msg := sameCI(entries, want); msg != "" {
		t.Fatal(msg)
	}
	if r := verifyStored(t, s, signer.PublicKey()); !r.OK() || r.Entries != 40 {
		t.Fatalf("verify: got %+v; want OK over 40 entries", r)
	}
	var buf bytes.Buffer
	if err := audit.Export(ctx, &buf, s); err != nil {
		t.Fatal(err)
	}
	d, err := audit.ReadExport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if msg := sameCI(d.Entries, want); msg != "" {
		t.Fatalf("export: %s", msg)
	}
	if r, err := audit.Verify(d.All(), d.Checkpoints, signer.PublicKey()); err != nil || !r.OK() || r.Entries != 40 {
		t.Fatalf("verify the export: got %v, %+v; want OK over 40 entries", err, r)
	}

	for _, q := range []audit.Query{{Token: "tok_other"}, {Token: "jit:deploy", Newest: true, Limit: 5}, {Action: "secret.*", After: 30}} {
		got, err := s.SearchAudit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Fatalf("search %+v: got nothing", q)
		}
		for _, e := range got {
			if !maps.Equal(e.CI, want[e.Seq]) || !q.Match(e) {
				t.Fatalf("search %+v: entry %d: got CI %v; want %v", q, e.Seq, e.CI, want[e.Seq])
			}
		}
	}
}

// testAuditCIMixedWithInline: a trail with rows written before migration
// 0103, CI inline, and rows after it that refer to audit_ci reads and
// verifies as one.
func testAuditCIMixedWithInline(t *testing.T, be AuditCIBackend) {
	ctx := context.Background()
	s, raw := be.open(t)
	c, err := audit.NewChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	facts := jitFacts("7")
	old := func(e *tokenward.AuditEntry) error { // as the store wrote it before 0103
		raw.Exec(t, fmt.Sprintf(`INSERT INTO audit_entries (seq, time, request_id, token_id, token_name, action, resource, outcome, reason, status, source_ip, user_agent, ci, meta, prev_hash, hash)
			VALUES (%d, %d, '', 'tok_jit', '', '%s', '', '%s', '', 0, '', '', '%s', '{}', '%s', '%s')`,
			e.Seq, e.Time.UnixNano(), e.Action, e.Outcome, `{"actor":"octocat","environment":"production","issuer":"https://token.actions.githubusercontent.com","ref":"refs/heads/main","repository":"acme/api","run_id":"7","sha":"4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c","subject":"repo:acme/api:environment:production","workflow":"acme/api/.github/workflows/deploy.yml@refs/heads/main"}`,
			e.PrevHash, e.Hash))
		return nil
	}
	now := func(e *tokenward.AuditEntry) error { return s.AppendAudit(ctx, e) }
	want := map[int64]map[string]string{}
	for i, store := range []func(*tokenward.AuditEntry) error{old, now, old, now, now} {
		e := &tokenward.AuditEntry{Time: auditT0, TokenID: "tok_jit", Action: "secret.read", Outcome: tokenward.OutcomeAllowed, CI: facts}
		if i == 4 {
			e.TokenID, e.CI = "", nil
		}
		if err := c.Append(e, store); err != nil {
			t.Fatal(err)
		}
		want[e.Seq] = e.CI
	}
	for _, c := range []struct {
		query string
		want  int64
	}{
		{`SELECT count(*) FROM audit_ci`, 1},
		{`SELECT count(*) FROM audit_entries WHERE ci_id IS NULL AND ci <> '{}'`, 2},    // 1, 3
		{`SELECT count(*) FROM audit_entries WHERE ci_id IS NOT NULL AND ci = '{}'`, 2}, // 2, 4
	} {
		if got := raw.Int(t, c.query); got != c.want {
			t.Errorf("%s: got %d; want %d", c.query, got, c.want)
		}
	}
	if msg := sameCI(readAll(t, s), want); msg != "" {
		t.Fatal(msg)
	}
	if r, err := audit.Verify(s.AuditEntries(ctx), nil, nil); err != nil || !r.OK() || r.Entries != 5 {
		t.Fatalf("verify: got %v, %+v; want OK over 5 entries", err, r)
	}
	got, err := s.SearchAudit(ctx, audit.Query{Token: "tok_jit"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("search: got %d entries; want 4", len(got))
	}
	for _, e := range got {
		if !maps.Equal(e.CI, facts) {
			t.Fatalf("search: entry %d: got CI %v; want %v", e.Seq, e.CI, facts)
		}
	}
	if last, err := s.LastAudit(ctx); err != nil || last.Seq != 5 || audit.HashEntry(last) != last.Hash {
		t.Fatalf("last: got %+v, %v; want seq 5 reading back to its hash", last, err)
	}
}

// testAuditCIRollbackForgets: a group refused (a seq taken) stores none of
// its CI facts, and the store does not remember them as stored: the same
// facts recorded again are stored then.
func testAuditCIRollbackForgets(t *testing.T, be AuditCIBackend) {
	ctx := context.Background()
	s, raw := be.open(t)
	c, _ := audit.NewChain(nil)
	first := &tokenward.AuditEntry{Time: auditT0, Action: "secret.read", Outcome: tokenward.OutcomeAllowed}
	if err := c.Append(first, func(e *tokenward.AuditEntry) error { return s.AppendAudit(ctx, e) }); err != nil {
		t.Fatal(err)
	}
	facts := jitFacts("99")
	fresh := &tokenward.AuditEntry{Seq: 2, Time: auditT0, Action: "secret.read", Outcome: tokenward.OutcomeAllowed, CI: facts, PrevHash: first.Hash}
	fresh.Hash = audit.HashEntry(fresh)
	taken := *first
	taken.CI = facts
	batch := []*tokenward.AuditEntry{fresh, &taken}
	var err error
	if bs, ok := s.(audit.BatchStore); ok {
		err = bs.AppendAuditBatch(ctx, batch)
	} else {
		t.Skip("the store stores no groups")
	}
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Fatalf("group with a taken seq: got %v; want ECONFLICT", err)
	}
	if n := raw.Int(t, `SELECT count(*) FROM audit_ci`); n != 0 {
		t.Fatalf("after the refused group: got %d CI objects; want 0", n)
	}
	if err := s.AppendAudit(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if n := raw.Int(t, `SELECT count(*) FROM audit_ci`); n != 1 {
		t.Fatalf("got %d CI objects; want 1", n)
	}
	if msg := sameCI(readAll(t, s), map[int64]map[string]string{1: nil, 2: facts}); msg != "" {
		t.Fatal(msg)
	}
}

// testAuditCITwoStores: two stores on one database (two servers, each
// with its own token cache, so its own map of the same facts) record at
// once: the facts are stored once and every entry reads them back. Stores
// that chain in the database (audit.ChainStore) record through a broker
// each, and the one trail verifies.
func testAuditCITwoStores(t *testing.T, be AuditCIBackend) {
	ctx := context.Background()
	s1, raw := be.open(t)
	s2 := be.Again(t, s1)
	t.Cleanup(func() { s2.Close() })
	_, chained := s1.(audit.ChainStore)
	const perStore, workers = 40, 4
	var brokers []*audit.Broker
	var wg sync.WaitGroup
	var mu sync.Mutex
	want := map[int64]map[string]string{}
	for k, s := range []AuditStore{s1, s2} {
		facts := jitFacts("5")
		var br *audit.Broker
		if chained {
			br = audit.NewBroker(s, nil)
			if err := br.Open(ctx); err != nil {
				t.Fatal(err)
			}
			brokers = append(brokers, br)
		}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perStore / workers {
					e := &tokenward.AuditEntry{Time: auditT0, Action: "secret.read", Outcome: tokenward.OutcomeAllowed, CI: facts,
						RequestID: fmt.Sprint(k, "-", w, "-", i)}
					var err error
					if chained {
						err = br.Record(ctx, e)
					} else {
						// Seqs of their own: a file's stores keep no one chain.
						e.Seq = int64(1 + k + 2*(w*perStore/workers+i))
						err = s.AppendAudit(ctx, e)
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					want[e.Seq] = facts
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, br := range brokers {
		if err := br.Close(ctx); err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	if n := raw.Int(t, `SELECT count(*) FROM audit_ci`); n != 1 {
		t.Errorf("got %d CI objects; want 1", n)
	}
	if n := raw.Int(t, `SELECT count(*) FROM audit_entries WHERE ci_id IS NOT NULL AND ci = '{}'`); n != 2*perStore {
		t.Errorf("got %d entries referring to their CI; want %d", n, 2*perStore)
	}
	for _, s := range []AuditStore{s1, s2} {
		if msg := sameCI(readAll(t, s), want); msg != "" {
			t.Fatal(msg)
		}
	}
	if chained {
		if r, err := audit.Verify(s2.AuditEntries(ctx), nil, nil); err != nil || !r.OK() || r.Entries != 2*perStore {
			t.Fatalf("verify: got %v, %+v; want OK over %d entries", err, r, 2*perStore)
		}
	}
}

// MustSigner returns a checkpoint signer with a new key.
func MustSigner(tb testing.TB) *audit.Signer {
	tb.Helper()
	key, err := audit.LoadOrCreateKey(tb.TempDir() + "/audit.key")
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := audit.NewSigner(key)
	if err != nil {
		tb.Fatal(err)
	}
	return signer
}

// testAuditPruneTamperedAnchor: retention deletes entries only up to a
// checkpoint that still vouches for its entry. Someone with write access
// to the database who dates a recent checkpointed entry back must not get
// the server to delete everything up to it, and record and sign that
// deletion, which verify then accepts: the prune refuses and deletes
// nothing, and verify names the edit. Also when the anchor's checkpoint
// is not the install's (signed by another key, or not at all).
func testAuditPruneTamperedAnchor(t *testing.T, be AuditCIBackend) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, raw AuditSQL)
	}{
		{"entry dated back", func(t *testing.T, raw AuditSQL) {
			raw.Exec(t, fmt.Sprintf(`UPDATE audit_entries SET time = %d WHERE seq = 15`, auditT0.Add(-400*24*time.Hour).UnixNano()))
		}},
		{"entry dated back, its hash column changed too", func(t *testing.T, raw AuditSQL) {
			// The hash column no longer matters once the checkpoint is
			// checked: it signed the entry's original hash.
			raw.Exec(t, fmt.Sprintf(`UPDATE audit_entries SET time = %d, hash = prev_hash WHERE seq = 15`, auditT0.Add(-400*24*time.Hour).UnixNano()))
		}},
		{"a checkpoint row added by hand", func(t *testing.T, raw AuditSQL) {
			raw.Exec(t, fmt.Sprintf(`UPDATE audit_entries SET time = %d WHERE seq = 17`, auditT0.Add(-400*24*time.Hour).UnixNano()))
			raw.Exec(t, `INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) SELECT seq, hash, time, 'forged', signature FROM audit_checkpoints WHERE seq = 15`)
			raw.Exec(t, `UPDATE audit_checkpoints SET seq = 17 WHERE key_id = 'forged'`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, raw := be.open(t)
			signer := MustSigner(t)
			b := audit.NewBroker(s, signer)
			b.CheckpointEvery = 5
			if err := b.Open(ctx); err != nil {
				t.Fatal(err)
			}
			defer b.Close(ctx)
			for i := range 20 { // checkpoints at 5, 10, 15, 20; none older than a day
				if err := b.Record(ctx, &tokenward.AuditEntry{Time: auditT0.Add(time.Duration(i) * time.Minute), Action: "secret.read", Outcome: tokenward.OutcomeAllowed}); err != nil {
					t.Fatal(err)
				}
			}
			tc.tamper(t, raw)
			res, err := b.Prune(ctx, auditT0.Add(-24*time.Hour))
			if err == nil || res.Deleted != 0 {
				t.Errorf("prune: got %+v, %v; want an error and nothing deleted", res, err)
			}
			if n := raw.Int(t, `SELECT count(*) FROM audit_entries WHERE seq <= 20`); n != 20 {
				t.Errorf("got %d of the entries 1..20 left; want all 20", n)
			}
			r := verifyStored(t, s, signer.PublicKey())
			if r.OK() {
				t.Fatalf("verify: got %+v; want the edit reported", r)
			}
		})
	}
}
