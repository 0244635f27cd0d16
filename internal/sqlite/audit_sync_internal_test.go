package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
)

func mustAuditStore(t *testing.T, mode AuditSync) *AuditStore {
	t.Helper()
	db := NewDB(filepath.Join(t.TempDir(), "tokenward.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	s := NewAuditStore(db, mode)
	s.SyncEvery = time.Second // the tests call syncNow themselves
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); db.Close() })
	return s
}

func auditEntry(seq int64) *tokenward.AuditEntry {
	return &tokenward.AuditEntry{Seq: seq, Time: time.Unix(1700000000, 0), Action: "secret.read", Outcome: tokenward.OutcomeAllowed,
		PrevHash: "p", Hash: "h"}
}

// synchronousOf reads PRAGMA synchronous on the write connection (2 = FULL).
func synchronousOf(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.write.QueryRow(`PRAGMA synchronous`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditStoreModes commits entries, and a signed checkpoint, in each
// mode: normal leaves the fsync to the background (a checkpoint's too, which
// used to fsync on its own), full fsyncs the commit; either way the write
// connection is FULL again afterwards and the row is stored.
func TestAuditStoreModes(t *testing.T) {
	commits := []struct {
		name   string
		commit func(*AuditStore) error
		stored func(*AuditStore) error
	}{
		{"entries", func(s *AuditStore) error {
			return s.AppendAuditBatch(t.Context(), []*tokenward.AuditEntry{auditEntry(1), auditEntry(2)})
		}, func(s *AuditStore) error {
			if last, err := s.LastAudit(t.Context()); err != nil || last == nil || last.Seq != 2 {
				return fmt.Errorf("LastAudit = %v, %v; want seq 2", last, err)
			}
			return nil
		}},
		{"checkpoint", func(s *AuditStore) error {
			return s.AppendCheckpoint(t.Context(), &audit.Checkpoint{Seq: 7, Hash: "h", Time: time.Unix(1700000000, 0), KeyID: "k", Signature: []byte("s")})
		}, func(s *AuditStore) error {
			if cps, err := s.AuditCheckpoints(t.Context()); err != nil || len(cps) != 1 || cps[0].Seq != 7 || cps[0].KeyID != "k" {
				return fmt.Errorf("AuditCheckpoints = %v, %v; want the one of seq 7", cps, err)
			}
			return nil
		}},
	}
	tests := []struct {
		mode      AuditSync
		wantDirty bool
	}{
		{AuditSyncNormal, true},
		{AuditSyncFull, false},
	}
	for _, tc := range tests {
		for _, c := range commits {
			t.Run(tc.mode.String()+"/"+c.name, func(t *testing.T) {
				s := mustAuditStore(t, tc.mode)
				var synced []string
				s.fsync = func(path string) error { synced = append(synced, path); return fsyncFile(path) }
				if err := c.commit(s); err != nil {
					t.Fatal(err)
				}
				if got := s.dirty; got != tc.wantDirty {
					t.Errorf("dirty after a commit: got %v; want %v", got, tc.wantDirty)
				}
				// Secret writes share the connection: it must be FULL again.
				if got := synchronousOf(t, s.DB); got != 2 {
					t.Errorf("write connection synchronous after an audit commit: got %d; want 2 (FULL)", got)
				}
				var ckpt int
				if err := s.write.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&ckpt); err != nil || ckpt != 1000 {
					t.Errorf("write connection wal_autocheckpoint after an audit commit: got %d, %v; want 1000", ckpt, err)
				}
				if err := s.syncNow(); err != nil {
					t.Fatal(err)
				}
				if tc.wantDirty && (len(synced) != 1 || synced[0] != s.Path+"-wal") {
					t.Errorf("fsynced %q; want [%s-wal]", synced, s.Path)
				}
				if !tc.wantDirty && len(synced) != 0 {
					t.Errorf("fsynced %q with nothing pending; want nothing", synced)
				}
				if s.dirty {
					t.Error("dirty after syncNow; want clean")
				}
				if err := c.stored(s); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// A failed background fsync makes the next group commit FULL (its fsync
// covers the earlier frames), and a success returns to normal commits.
func TestAuditStoreSyncFailureCommitsFull(t *testing.T) {
	s := mustAuditStore(t, AuditSyncNormal)
	s.fsync = func(string) error { return errors.New("EIO") }
	if err := s.AppendAuditBatch(t.Context(), []*tokenward.AuditEntry{auditEntry(1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.syncNow(); err == nil {
		t.Fatal("syncNow with a failing fsync: got nil; want the error")
	}
	if s.syncErr == nil || !s.dirty {
		t.Fatalf("after a failed fsync: syncErr %v, dirty %v; want set, true", s.syncErr, s.dirty)
	}
	if err := s.AppendAuditBatch(t.Context(), []*tokenward.AuditEntry{auditEntry(2)}); err != nil {
		t.Fatal(err)
	}
	if s.syncErr != nil || s.dirty {
		t.Errorf("after a FULL commit: syncErr %v, dirty %v; want nil, false", s.syncErr, s.dirty)
	}
	if err := s.AppendAuditBatch(t.Context(), []*tokenward.AuditEntry{auditEntry(3)}); err != nil {
		t.Fatal(err)
	}
	if !s.dirty {
		t.Error("after the FULL commit, the next commit is not normal (dirty false); want normal")
	}
}

// A commit that fails refuses the group in both modes (fail-closed), and
// leaves the connection FULL.
func TestAuditStoreFailClosed(t *testing.T) {
	for _, mode := range []AuditSync{AuditSyncNormal, AuditSyncFull} {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/group=%d", mode, n), func(t *testing.T) {
				s := mustAuditStore(t, mode)
				if _, err := s.write.Exec(`CREATE TRIGGER audit_block BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'blocked'); END`); err != nil {
					t.Fatal(err)
				}
				var es []*tokenward.AuditEntry
				for i := range n {
					es = append(es, auditEntry(int64(i+1)))
				}
				if err := s.AppendAuditBatch(context.Background(), es); err == nil {
					t.Fatal("AppendAuditBatch into a blocked table: got nil; want an error")
				}
				s.mu.Lock()
				dirty := s.dirty
				s.mu.Unlock()
				if dirty {
					t.Error("dirty after a failed commit; want false")
				}
				if got := synchronousOf(t, s.DB); got != 2 {
					t.Errorf("synchronous after a failed audit commit: got %d; want 2 (FULL)", got)
				}
				if last, err := s.LastAudit(t.Context()); err != nil || last != nil {
					t.Errorf("LastAudit = %v, %v; want nil, nil", last, err)
				}
			})
		}
	}
}

// A taken seq is ECONFLICT through the driver-level path too, for a group
// of one (autocommit) and of several (nothing of the group is stored).
func TestAuditStoreNormalConflict(t *testing.T) {
	s := mustAuditStore(t, AuditSyncNormal)
	if err := s.AppendAuditBatch(t.Context(), []*tokenward.AuditEntry{auditEntry(1)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		seqs []int64
	}{
		{"one", []int64{1}},
		{"several", []int64{2, 1}},
	}
	for _, tc := range tests {
		var es []*tokenward.AuditEntry
		for _, q := range tc.seqs {
			es = append(es, auditEntry(q))
		}
		if err := s.AppendAuditBatch(t.Context(), es); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
			t.Errorf("%s: AppendAuditBatch with a taken seq: got %v; want ECONFLICT", tc.name, err)
		}
		if last, err := s.LastAudit(t.Context()); err != nil || last == nil || last.Seq != 1 {
			t.Errorf("%s: LastAudit = %v, %v; want seq 1 (the group stored nothing)", tc.name, last, err)
		}
		if got := synchronousOf(t, s.DB); got != 2 {
			t.Errorf("%s: synchronous after a conflict: got %d; want 2 (FULL)", tc.name, got)
		}
	}
}

// The background loop fsyncs the WAL after a normal commit, and Close
// fsyncs what is still pending.
func TestAuditStoreBackgroundSync(t *testing.T) {
	db := NewDB(filepath.Join(t.TempDir(), "tokenward.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := NewAuditStore(db, AuditSyncNormal)
	s.SyncEvery = time.Millisecond
	synced := make(chan string, 16)
	s.fsync = func(path string) error { synced <- path; return fsyncFile(path) }
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAuditBatch(t.Context(), []*tokenward.AuditEntry{auditEntry(1)}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-synced:
		if got != db.Path+"-wal" {
			t.Errorf("fsynced %s; want %s-wal", got, db.Path)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no background fsync after a normal commit")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	dirty := s.dirty
	s.mu.Unlock()
	if dirty {
		t.Error("dirty after Close; want false")
	}
	// After Close, commits are FULL (no background fsync to rely on).
	if err := s.AppendAuditBatch(t.Context(), []*tokenward.AuditEntry{auditEntry(2)}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	dirty = s.dirty
	s.mu.Unlock()
	if dirty {
		t.Error("a commit after Close left dirty set; want a FULL commit")
	}
}

// TestAuditCommitIgnoresCancellation: an audit commit's statements run
// without the caller's cancellation, since the driver watches a cancellable
// context with a goroutine per statement. So a commit (of entries, or of a
// checkpoint) under a cancellable context allocates no more than one under
// a context that cannot be cancelled.
func TestAuditCommitIgnoresCancellation(t *testing.T) {
	s := mustAuditStore(t, AuditSyncNormal)
	seq := int64(0)
	commits := []struct {
		name   string
		commit func(ctx context.Context) error
	}{
		{"entries", func(ctx context.Context) error {
			seq += 2
			return s.AppendAuditBatch(ctx, []*tokenward.AuditEntry{auditEntry(seq - 1), auditEntry(seq)})
		}},
		{"checkpoint", func(ctx context.Context) error {
			seq++
			return s.AppendCheckpoint(ctx, &audit.Checkpoint{Seq: seq, Hash: "h", Time: time.Unix(1700000000, 0), KeyID: "k", Signature: []byte("s")})
		}},
	}
	for _, c := range commits {
		allocs := func(ctx context.Context) float64 {
			return testing.AllocsPerRun(50, func() {
				if err := c.commit(ctx); err != nil {
					t.Fatal(err)
				}
			})
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancellable := allocs(ctx)
		cancel()
		plain := allocs(context.Background())
		if cancellable > plain+1 {
			t.Errorf("%s: %.0f allocations under a cancellable context, %.0f under Background: the statements watch the context", c.name, cancellable, plain)
		}
	}
}
