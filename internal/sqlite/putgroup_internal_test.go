package sqlite

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

func mustGroupDB(t *testing.T) *DB {
	t.Helper()
	db := NewDB(filepath.Join(t.TempDir(), "tokenward.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateProject(t.Context(), &tokenward.Project{Name: "p", Envs: []string{"prod"}, CreatedAt: time.Unix(1700000000, 0)},
		&tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	return db
}

func putV(t *testing.T, db *DB, name string, prev int) error {
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: name}
	if prev > 0 {
		cur, err := db.Secret(t.Context(), "p", "prod", name)
		if err != nil {
			return err
		}
		meta = cur
	}
	return db.PutSecret(t.Context(), meta, prev, &tokenward.SecretVersion{Version: prev + 1, CreatedAt: time.Unix(1700000000, 0), CreatedBy: "tok_x", Ciphertext: []byte("ct")})
}

// TestPutSecretGroupCommit holds the write connection so that the writes
// queue into one group, then checks each write's own outcome: the failing
// ones (a version conflict, an unknown environment) are rolled back alone
// and the others commit.
func TestPutSecretGroupCommit(t *testing.T) {
	db := mustGroupDB(t)
	if err := putV(t, db, "SHARED", 0); err != nil {
		t.Fatal(err)
	}
	hold, err := db.write.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const writers = 12
	errs := make([]error, writers+2)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if i%3 == 0 {
				// Four writers race for SHARED's version 2: one wins.
				errs[i] = putV(t, db, "SHARED", 1)
				return
			}
			errs[i] = putV(t, db, fmt.Sprintf("KEY_%02d", i), 0)
		})
	}
	wg.Go(func() {
		errs[writers] = db.PutSecret(t.Context(), &tokenward.Secret{Project: "p", Env: "nope", Name: "X"}, 0,
			&tokenward.SecretVersion{Version: 1, CreatedAt: time.Unix(1700000000, 0), CreatedBy: "tok_x", Ciphertext: []byte("ct")})
	})
	wg.Go(func() { errs[writers+1] = putV(t, db, "KEY_LAST", 0) })
	// Let the writers queue behind the held connection: the leader's first
	// batch (its own write, and on a loaded machine whatever else arrived
	// before it took the queue) waits for the connection, the rest queue.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := db.puts.Waiting()
		if n >= writers+2 {
			break
		}
		if time.Now().After(deadline) {
			hold.Close()
			t.Fatalf("got %d writes waiting; want %d (the group this test is about did not form)", n, writers+2)
		}
		time.Sleep(time.Millisecond)
	}
	hold.Close()
	wg.Wait()

	wins := 0
	for i := range writers {
		switch {
		case i%3 == 0 && errs[i] == nil:
			wins++
		case i%3 == 0 && tokenward.ErrorCode(errs[i]) == tokenward.ECONFLICT:
		case i%3 != 0 && errs[i] != nil:
			t.Errorf("KEY_%02d: got %v; want it written", i, errs[i])
		}
	}
	if wins != 1 {
		t.Errorf("got %d writers of SHARED v2; want exactly 1 (the others ECONFLICT)", wins)
	}
	if code := tokenward.ErrorCode(errs[writers]); code != tokenward.ENOTFOUND {
		t.Errorf("write into an unknown environment: got %v; want ENOTFOUND", errs[writers])
	}
	if errs[writers+1] != nil {
		t.Errorf("KEY_LAST: got %v; want it written", errs[writers+1])
	}
	list, err := db.Secrets(t.Context(), "p", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + writers - 4 + 1; len(list) != want {
		t.Errorf("got %d secrets; want %d", len(list), want)
	}
	if s, err := db.Secret(t.Context(), "p", "prod", "SHARED"); err != nil || s.Version != 2 {
		t.Errorf("SHARED: got %+v, %v; want version 2", s, err)
	}
}
