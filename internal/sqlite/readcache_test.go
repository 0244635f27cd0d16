package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// TestCurrentSecretCacheSeesEveryWrite: a cached current secret is never
// served after a commit, whether the write came through this handle,
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
}
