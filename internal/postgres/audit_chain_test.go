package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/storetest"
)

// chainEntry is the i-th entry a test server records.
func chainEntry(server, i int) *tokenward.AuditEntry {
	return &tokenward.AuditEntry{Time: time.Date(2026, 12, 4, 10, 0, 0, i*1000, time.UTC), Action: "secret.read",
		Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed, RequestID: fmt.Sprintf("server-%d-%d", server, i),
		CI: map[string]string{"repository": "acme/api"}}
}

// TestAuditChainThreeServers: three servers (three pools, three brokers,
// one audit key) record concurrently on one database, all to the end or
// with one of them killed midway (its connections terminated, its broker
// abandoned without a shutdown checkpoint). Every Record that returned nil
// is in the chain exactly once, with the seq and hash its caller was given;
// an entry no caller was told of is the killed server's (a commit whose
// answer was lost); seqs have no gap; the chain verifies in full, with the
// checkpoints the servers signed in any order; and a row edited in the
// database afterwards is found.
func TestAuditChainThreeServers(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprint("killed=", kill), func(t *testing.T) { threeServers(t, kill) })
	}
}

func threeServers(t *testing.T, kill bool) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	admin := mustConn(t, url)
	signer := storetest.MustSigner(t)
	const servers, workers, perWorker, every, killAfter = 3, 4, 40, 7, 50
	dbs := make([]*postgres.DB, servers)
	brokers := make([]*audit.Broker, servers)
	for i := range servers {
		dbs[i] = mustOpenURL(t, fmt.Sprintf("%s&application_name=audit-server-%d", url, i))
		brokers[i] = mustBroker(t, dbs[i], signer, every)
	}
	var mu sync.Mutex
	acked := map[string]*tokenward.AuditEntry{}
	var killed atomic.Bool
	var killedAcks atomic.Int64
	var wg sync.WaitGroup
	for s := range servers {
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					if s == 0 && killed.Load() {
						return
					}
					e := chainEntry(s, w*perWorker+i)
					if err := brokers[s].Record(ctx, e); err != nil {
						if s == 0 && kill && killedAcks.Load() >= killAfter {
							return // dying
						}
						t.Errorf("server %d: record %s: %v", s, e.RequestID, err)
						return
					}
					mu.Lock()
					acked[e.RequestID] = e
					mu.Unlock()
					if s == 0 && kill && killedAcks.Add(1) == killAfter {
						// Server 0 dies: its sessions end amid its other
						// workers' groups, then it sends nothing more.
						if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'audit-server-0'`); err != nil {
							t.Error(err)
						}
						killed.Store(true)
					}
				}
			})
		}
	}
	wg.Wait()
	for s, b := range brokers {
		if s == 0 && kill {
			continue // killed: no shutdown checkpoint
		}
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	total := servers * workers * perWorker
	if kill {
		total = len(acked) // at least the survivors' 320
	}
	if len(acked) != total || total < (servers-1)*workers*perWorker+killAfter {
		t.Fatalf("got %d acknowledged records; want %d", len(acked), total)
	}

	seen := map[string]bool{}
	var seqs []int64
	var signedTo int64
	for e, err := range dbs[1].AuditEntries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[e.RequestID] {
			t.Errorf("request %s is in the chain twice", e.RequestID)
		}
		seen[e.RequestID] = true
		seqs = append(seqs, e.Seq)
		if !kill || !strings.HasPrefix(e.RequestID, "server-0-") {
			signedTo = e.Seq // a server that shut down signed at least this far
		}
		if a := acked[e.RequestID]; a == nil {
			if !kill || !strings.HasPrefix(e.RequestID, "server-0-") {
				t.Errorf("entry %d (%s) was never acknowledged", e.Seq, e.RequestID)
			}
		} else if a.Seq != e.Seq || a.Hash != e.Hash || a.PrevHash != e.PrevHash {
			t.Errorf("request %s: caller was given seq %d hash %.8s; stored seq %d hash %.8s", e.RequestID, a.Seq, a.Hash, e.Seq, e.Hash)
		}
	}
	for id := range acked {
		if !seen[id] {
			t.Errorf("acknowledged request %s is not in the chain", id)
		}
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("entry at position %d has seq %d; want %d (no gap, in insertion order)", i, s, i+1)
		}
	}
	stored := int64(len(seqs))

	cps, err := dbs[1].AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// No leader: each multiple of every is covered by a checkpoint at the
	// end of the batch that crossed it, whichever server wrote it (unless
	// that was the killed server's last).
	missing := 0
	for m := int64(every); m <= stored; m += every {
		if !slices.ContainsFunc(cps, func(cp *audit.Checkpoint) bool { return cp.Seq >= m && cp.Seq < m+512 }) {
			missing++
		}
	}
	if missing > 0 && (!kill || missing > 1) {
		t.Errorf("%d multiples of %d without the checkpoint of the batch that crossed them", missing, every)
	}
	reversed := slices.Clone(cps)
	slices.Reverse(reversed)
	for name, cps := range map[string][]*audit.Checkpoint{"as stored": cps, "reversed": reversed} {
		r, err := audit.Verify(dbs[2].AuditEntries(ctx), cps, signer.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Entries != stored || r.LastSeq != stored || r.LastCheckpointSeq < signedTo {
			t.Errorf("verify, checkpoints %s: got ok=%v entries=%d last=%d last checkpoint=%d problems=%v; want ok, %d, %d, at least %d",
				name, r.OK(), r.Entries, r.LastSeq, r.LastCheckpointSeq, r.Problems, stored, stored, signedTo)
		}
	}

	// Someone with database access, not the signing key, edits a row.
	if _, err := admin.Exec(ctx, `UPDATE audit_entries SET outcome = 'denied' WHERE seq = 100`); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, dbs[2], signer)
	if p := r.First(); p == nil || p.Kind != audit.KindModified || p.Seq != 100 {
		t.Fatalf("verify after an edited row: got %v; want modified at seq 100", r.Problems)
	}
}

// TestAuditChainConnectionKilled: the database connection of a server is
// killed while its transaction has written part of a batch. Nothing of the
// batch is visible, the broker refuses the request (fail-closed) without
// the database password in its error or log, and the next request
// continues the chain with no gap.
func TestAuditChainConnectionKilled(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Shared(t)
	url := pg.NewDatabase(t)
	db := mustOpenURL(t, url) // migrates
	admin := mustConn(t, url)
	// A trigger stops the insert of the entry named "hold" until the test's
	// advisory lock 42 is free: the rows before it in the statement are
	// written, not committed.
	for _, q := range []string{
		`CREATE FUNCTION hold_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.request_id = 'hold' THEN PERFORM pg_advisory_lock(42); END IF; RETURN NEW; END $$`,
		`CREATE TRIGGER hold_audit BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION hold_audit()`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	b := audit.NewBroker(db, storetest.MustSigner(t))
	b.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(ctx) })
	if err := b.Record(ctx, chainEntry(0, 0)); err != nil {
		t.Fatal(err)
	}

	// hold blocks the insert of the entry named "hold", and kills the
	// session that waits there.
	hold := func(t *testing.T, write func() error) error {
		t.Helper()
		if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(42)`); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- write() }()
		var pid int32
		for pid == 0 { // until the insert waits on lock 42
			err := admin.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = 42 LIMIT 1`).Scan(&pid)
			if err != nil && err != pgx.ErrNoRows {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // poll gently
		}
		var sawRows int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&sawRows); err != nil {
			t.Fatal(err)
		}
		if sawRows != 1 {
			t.Errorf("while the batch is half written: %d entries visible; want 1", sawRows)
		}
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		err := <-done
		if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock(42)`); err != nil {
			t.Fatal(err)
		}
		return err
	}

	t.Run("mid-batch", func(t *testing.T) {
		batch := []*tokenward.AuditEntry{chainEntry(1, 1), chainEntry(1, 2), chainEntry(1, 3)}
		batch[1].RequestID = "hold"
		if err := hold(t, func() error { return db.AppendChained(ctx, batch) }); err == nil {
			t.Fatal("AppendChained on a killed connection: got nil; want an error")
		}
	})
	t.Run("broker refuses", func(t *testing.T) {
		for i := range 2 {
			e := chainEntry(2, i)
			e.RequestID = "hold"
			err := hold(t, func() error { return b.Record(ctx, e) })
			if err == nil {
				t.Fatal("Record on a killed connection: got nil; want the request refused")
			}
			if e.Seq != 0 || e.Hash != "" {
				t.Errorf("refused entry: got seq %d hash %q; want none", e.Seq, e.Hash)
			}
			if strings.Contains(err.Error(), pg.Password) || strings.Contains(err.Error(), url) {
				t.Errorf("the database password reached the error: %q", err)
			}
		}
	})

	e := chainEntry(3, 1)
	if err := b.Record(ctx, e); err != nil {
		t.Fatalf("record after the killed connection: %v", err)
	}
	if e.Seq != 2 {
		t.Errorf("record after the killed connection: got seq %d; want 2 (nothing of the killed batches stored)", e.Seq)
	}
	// The outage is logged at error where it starts, its second refusal at
	// debug, its end at info; never with the password.
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if strings.Contains(out, pg.Password) || strings.Contains(out, url) {
		t.Errorf("the database password reached the log: %q", out)
	}
	for _, want := range []struct {
		level, msg string
		n          int
	}{{"ERROR", "requests refused", 1}, {"DEBUG", "requests refused", 1}, {"INFO", "records entries again", 1}} {
		n := 0
		for line := range strings.Lines(out) {
			if strings.Contains(line, "level="+want.level) && strings.Contains(line, want.msg) {
				n++
			}
		}
		if n != want.n {
			t.Errorf("log lines at %s saying %q: got %d; want %d\n%s", want.level, want.msg, n, want.n, out)
		}
	}
	if r := mustVerify(t, db, storetest.MustSigner(t)); !r.OK() || r.Entries != 2 {
		t.Errorf("verify: got ok=%v entries=%d problems=%v; want ok, 2", r.OK(), r.Entries, r.Problems)
	}
}

// TestAuditChainIdleBound: the transaction that holds the chain's lock
// runs with a bound on its idle time, so a server that stalls holding it
// loses its session (and the lock) instead of stopping every server.
func TestAuditChainIdleBound(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	db := mustOpenURL(t, url)
	admin := mustConn(t, url)
	for _, q := range []string{
		`CREATE TABLE seen (setting TEXT)`,
		`CREATE FUNCTION note_idle() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO seen VALUES (current_setting('idle_in_transaction_session_timeout')); RETURN NEW; END $$`,
		`CREATE TRIGGER note_idle BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION note_idle()`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	b := mustBroker(t, db, storetest.MustSigner(t), 100)
	if err := b.Record(ctx, chainEntry(0, 0)); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := admin.QueryRow(ctx, `SELECT string_agg(setting, ',') FROM seen`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "5s" {
		t.Errorf("idle_in_transaction_session_timeout in the chain's transaction: got %q; want 5s", got)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BenchmarkAuditRecordServers measures Record on PostgreSQL from many
// goroutines through one broker (one server) and spread over three
// (three servers on one database): the chain's head lock serialises the
// servers, group commits amortise it.
func BenchmarkAuditRecordServers(b *testing.B) {
	for _, servers := range []int{1, 3} {
		b.Run(fmt.Sprintf("servers=%d", servers), func(b *testing.B) {
			ctx := context.Background()
			url := pgtest.Shared(b).NewDatabase(b)
			signer := storetest.MustSigner(b)
			brokers := make([]*audit.Broker, servers)
			for i := range brokers {
				brokers[i] = mustBroker(b, mustOpenURL(b, url), signer, audit.DefaultCheckpointEvery)
			}
			var next sync.Mutex
			n := 0
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				next.Lock()
				br := brokers[n%servers]
				n++
				next.Unlock()
				i := 0
				for pb.Next() {
					i++
					if err := br.Record(ctx, chainEntry(0, i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			for _, br := range brokers {
				br.Close(ctx)
			}
			// Each group is one transaction: its rows share their xmin.
			var rows, commits float64
			if err := mustConn(b, url).QueryRow(ctx, `SELECT count(*), count(DISTINCT xmin::text) FROM audit_entries`).Scan(&rows, &commits); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(rows/commits, "entries/commit")
		})
	}
}
