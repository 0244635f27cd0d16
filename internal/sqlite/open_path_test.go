package sqlite

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// openReviewDB opens path, creates p/prod and writes p/prod/KEY version 1.
func openReviewDB(t *testing.T, path string) *DB {
	t.Helper()
	db := NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkSeesOtherHandle: db serves p/prod/KEY from its cache, another handle
// on other (the same file, however named) writes version 2, and db's next
// read sees it.
func checkSeesOtherHandle(t *testing.T, db *DB, other string) {
	t.Helper()
	ctx := t.Context()
	if err := db.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{"prod"}, CreatedAt: time.Unix(0, 0)}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	if err := db.PutSecret(ctx, meta, 0, &tokenward.SecretVersion{Version: 1, Ciphertext: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read is the cache's
		if s, _, err := db.CurrentSecret(ctx, "p", "prod", "KEY"); err != nil || s.Version != 1 {
			t.Fatalf("got %+v, %v; want version 1", s, err)
		}
	}
	o := openReviewDB(t, other)
	if err := o.PutSecret(ctx, meta, 1, &tokenward.SecretVersion{Version: 2, Ciphertext: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if s, _, err := db.CurrentSecret(ctx, "p", "prod", "KEY"); err != nil || s.Version != 2 {
		t.Fatalf("after another handle wrote version 2: got %+v, %v; want version 2", s, err)
	}
}

// TestOpenPathWithURICharacters: a database path holding characters that
// are special in a SQLite URI ('#', '?', '%') is the file SQLite opens,
// with the connection's pragmas; not a file at a truncated or decoded
// path next to it.
func TestOpenPathWithURICharacters(t *testing.T) {
	for _, name := range []string{"data#1", "data?x", "data%41"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, name)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "tokenward.db")
			db := openReviewDB(t, path)
			if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
				t.Fatalf("%s: %v, %v; want the database there", path, fi, err)
			}
			ents, err := os.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if e.Name() != name {
					t.Errorf("a stray %s next to %s", e.Name(), name)
				}
			}
			checkSeesOtherHandle(t, db, path)
		})
	}
}

// TestOpenSymlinkedFile: the database path may be a symbolic link to the
// file (SQLite names its -wal and -shm files after the link's target); the
// clock must watch the -shm file SQLite uses.
func TestOpenSymlinkedFile(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real.db")
	link := filepath.Join(t.TempDir(), "tokenward.db")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	db := openReviewDB(t, link)
	checkSeesOtherHandle(t, db, real)
}

// TestAuditSyncSymlinkedFile: with the database path a symbolic link, the
// audit store's background fsync must sync the WAL SQLite writes (named
// after the link's target), not report a missing file at the link's name as
// "nothing to sync" while the normal commits it covers are not durable.
func TestAuditSyncSymlinkedFile(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real.db")
	link := filepath.Join(t.TempDir(), "tokenward.db")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	db := openReviewDB(t, link)
	as := NewAuditStore(db, AuditSyncNormal)
	var mu sync.Mutex
	var synced []string
	as.fsync = func(path string) error {
		mu.Lock()
		synced = append(synced, path)
		mu.Unlock()
		return fsyncFile(path)
	}
	if err := as.Open(); err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	if err := as.AppendAuditBatch(t.Context(), auditBatch(1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := as.SyncAudit(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(synced) == 0 {
		t.Fatal("no fsync after a normal commit")
	}
	for _, p := range synced {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("fsynced %s: %v; want the WAL SQLite writes (%s-wal)", p, err, real)
		}
	}
}
