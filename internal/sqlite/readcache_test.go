package sqlite_test

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// TestCurrentSecretCacheSeesEveryWrite: a cached current secret or
// environment listing is never served after a commit, whether the write came through this handle,
// another handle on the same file (another process), or raw SQL.
func TestCurrentSecretCacheSeesEveryWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenward.db")
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other := sqlite.NewDB(path)
	if err := other.Open(); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := t.Context()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{"prod"}, CreatedAt: at}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	put := func(store *sqlite.DB, prev int, ct string) {
		t.Helper()
		if err := store.PutSecret(ctx, meta, prev, &tokenward.SecretVersion{Version: prev + 1, CreatedAt: at, Ciphertext: []byte(ct)}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(version int, ct, owner string) {
		t.Helper()
		for range 2 { // the second read is served from the cache
			s, v, err := db.CurrentSecret(ctx, "p", "prod", "KEY")
			if err != nil || s.Version != version || string(v.Ciphertext) != ct || s.Owner != owner {
				t.Fatalf("got %+v %q, %v; want version %d %q owner %q", s, v.Ciphertext, err, version, ct, owner)
			}
			s.Owner = "scribbled" // a caller's change must not reach the cache
			list, err := db.Secrets(ctx, "p", "prod")
			if err != nil || len(list) != 1 || list[0].Version != version || list[0].Owner != owner {
				t.Fatalf("Secrets: got %v, %v; want KEY at version %d owner %q", list, err, version, owner)
			}
			list[0].Owner = "scribbled"
			secrets, versions, err := db.EnvSecrets(ctx, "p", "prod")
			if err != nil || len(secrets) != 1 || secrets[0].Version != version || secrets[0].Owner != owner || string(versions[0].Ciphertext) != ct {
				t.Fatalf("EnvSecrets: got %v %v, %v; want KEY at version %d owner %q %q", secrets, versions, err, version, owner, ct)
			}
			secrets[0].Owner, versions[0].Version = "scribbled", 99
		}
	}
	put(db, 0, "c1")
	want(1, "c1", "")
	put(db, 1, "c2")
	want(2, "c2", "")
	put(other, 2, "c3") // another process
	want(3, "c3", "")
	if _, err := raw.Exec(`UPDATE secrets SET owner = 'team' WHERE name = 'KEY'`); err != nil {
		t.Fatal(err)
	}
	want(3, "c3", "team")
	if _, err := raw.Exec(`UPDATE secrets SET version = 2 WHERE name = 'KEY'`); err != nil { // a label move
		t.Fatal(err)
	}
	want(2, "c2", "team")
	// A checkpoint that empties the WAL, so the next commit restarts it
	// from frame 1: the WAL index's frame count may repeat, its salts not.
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	want(2, "c2", "team")
	if _, err := raw.Exec(`UPDATE secrets SET owner = 'ops' WHERE name = 'KEY'`); err != nil {
		t.Fatal(err)
	}
	want(2, "c2", "ops")
}

// TestCurrentSecretCacheNoStalenessWindow: a read that starts after a
// commit returns sees it, whether the commit came from this handle, another
// handle on the file, or another process — there is no time bound to wait
// out. Readers race the writers; each remembers the last version committed
// before its read began and must never be served an older one.
func TestCurrentSecretCacheNoStalenessWindow(t *testing.T) {
	for _, tc := range []struct {
		writer   string
		versions int
	}{{"same handle", 30}, {"other handle", 30}, {"process", 4}} {
		writer, versions := tc.writer, tc.versions
		t.Run(writer, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokenward.db")
			db := mustOpen(t, path)
			ctx := t.Context()
			if err := db.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{"prod"}, CreatedAt: time.Unix(0, 0)}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte("w")}); err != nil {
				t.Fatal(err)
			}
			put := func(store *sqlite.DB, prev int) {
				meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
				if err := store.PutSecret(ctx, meta, prev, &tokenward.SecretVersion{Version: prev + 1, Ciphertext: []byte("c")}); err != nil {
					t.Error(err)
				}
			}
			put(db, 0)
			var committed atomic.Int64
			committed.Store(1)
			done := make(chan struct{})
			other := mustOpen(t, path)
			go func() {
				defer close(done)
				for prev := 1; prev < versions; prev++ {
					switch writer {
					case "same handle":
						put(db, prev)
					case "other handle":
						put(other, prev)
					case "process":
						writerProcess(t, path, prev)
					}
					committed.Store(int64(prev + 1))
				}
			}()
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						floor := committed.Load()
						s, _, err := db.CurrentSecret(ctx, "p", "prod", "KEY")
						if err != nil {
							t.Error(err)
							return
						}
						if int64(s.Version) < floor {
							t.Errorf("got version %d; want at least %d, committed before the read began", s.Version, floor)
							return
						}
					}
				})
			}
			wg.Wait()
			<-done
			if s, _, err := db.CurrentSecret(ctx, "p", "prod", "KEY"); err != nil || s.Version != versions {
				t.Fatalf("got %+v, %v; want version %d", s, err, versions)
			}
		})
	}
}

// writerProcess writes version prev+1 of p/prod/KEY from a separate OS
// process: this test binary, re-run as TestWriterProcess.
func writerProcess(t *testing.T, path string, prev int) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$")
	cmd.Env = append(os.Environ(), "TOKENWARD_TEST_WRITER_DB="+path, "TOKENWARD_TEST_WRITER_PREV="+strconv.Itoa(prev))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("writer process: %v: %s", err, out)
	}
}

func TestWriterProcess(t *testing.T) {
	path := os.Getenv("TOKENWARD_TEST_WRITER_DB")
	if path == "" {
		t.Skip("run by TestCurrentSecretCacheNoStalenessWindow")
	}
	prev, _ := strconv.Atoi(os.Getenv("TOKENWARD_TEST_WRITER_PREV"))
	db := mustOpen(t, path)
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	if err := db.PutSecret(t.Context(), meta, prev, &tokenward.SecretVersion{Version: prev + 1, Ciphertext: []byte("c")}); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestTokenCacheSeesRevocation: a token record read by id is served from
// the cache until a commit, so a revocation (or suspension) through any
// handle is seen by the very next read.
func TestTokenCacheSeesRevocation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenward.db")
	db, other := mustOpen(t, path), mustOpen(t, path)
	ctx := t.Context()
	tok := &tokenward.Token{ID: "tok_1", Name: "ci", Kind: tokenward.TokenService, CreatedAt: time.Unix(0, 0),
		Grants: tokenward.Grants{{Action: tokenward.ActionRead, Project: "p", Env: "prod", Name: "*"}}}
	if err := db.CreateToken(ctx, tok, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read is served from the cache
		got, err := db.Token(ctx, "tok_1")
		if err != nil || !got.RevokedAt.IsZero() || len(got.Grants) != 1 || got.Grants[0].Env != "prod" {
			t.Fatalf("got %+v, %v; want tok_1, not revoked, reading p/prod/*", got, err)
		}
		got.Grants[0].Env = "scribbled" // a caller's change must not reach the cache
	}
	if err := other.RevokeToken(ctx, "tok_1", time.Unix(5, 0)); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Token(ctx, "tok_1"); err != nil || !got.RevokedAt.Equal(time.Unix(5, 0)) {
		t.Fatalf("after revocation by another handle: got %+v, %v; want revoked at 5s", got, err)
	}
}

// BenchmarkCurrentSecretCached is a current-secret read served from the
// read cache, one reader and as many as GOMAXPROCS: what validating the
// cache costs a read.
func BenchmarkCurrentSecretCached(b *testing.B) {
	db := mustOpen(b, filepath.Join(b.TempDir(), "tokenward.db"))
	ctx := b.Context()
	if err := db.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{"prod"}, CreatedAt: time.Unix(0, 0)}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte("w")}); err != nil {
		b.Fatal(err)
	}
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	if err := db.PutSecret(ctx, meta, 0, &tokenward.SecretVersion{Version: 1, Ciphertext: make([]byte, 128)}); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B) {
		if _, _, err := db.CurrentSecret(ctx, "p", "prod", "KEY"); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			read(b)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				read(b)
			}
		})
	})
}
