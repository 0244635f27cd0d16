package sqlite

import (
	"bytes"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// TestDiskFullIsUnavailable caps the database near its current size
// (PRAGMA max_page_count on the one write connection: SQLite's own way to
// fail a write with SQLITE_FULL, as a full filesystem does) and writes
// until a write fails: a secret write (the group commit) and any other
// write transaction fail with errDiskFull, a 503 that says so, and not an
// internal error; once the cap is lifted, the same DB writes again.
// cmd/tokenward's TestDiskFull does the same with a full tmpfs.
func TestDiskFullIsUnavailable(t *testing.T) {
	db := mustGroupDB(t)
	var pages int
	if err := db.write.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	limit := func(n int) {
		t.Helper()
		if _, err := db.write.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, n)); err != nil {
			t.Fatal(err)
		}
	}
	limit(pages + 4)
	ct := bytes.Repeat([]byte("c"), 3000)
	put := func(i int) error {
		return db.PutSecret(t.Context(), &tokenward.Secret{Project: "p", Env: "prod", Name: fmt.Sprint("K", i)}, 0,
			&tokenward.SecretVersion{Version: 1, CreatedAt: time.Unix(1700000000, 0), CreatedBy: "tok_x", Ciphertext: ct})
	}
	var err error
	i := 0
	for ; i < 100 && err == nil; i++ {
		err = put(i)
	}
	check := func(what string, err error) {
		t.Helper()
		if tokenward.ErrorCode(err) != tokenward.EUNAVAILABLE || tokenward.ErrorMessage(err) != errDiskFull.Message {
			t.Fatalf("%s on a full database: got %v (code %s); want %q", what, err, tokenward.ErrorCode(err), errDiskFull.Message)
		}
	}
	check("a secret write", err)
	check("a write transaction", db.tx(t.Context(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE IF NOT EXISTS filler (b BLOB)`)
		if err == nil {
			_, err = tx.Exec(`INSERT INTO filler VALUES (?)`, bytes.Repeat([]byte("f"), 64<<10))
		}
		return err
	}))
	if diskFull(nil) != nil {
		t.Fatal("diskFull(nil) is not nil")
	}

	limit(1 << 20) // space returns
	if err := put(i); err != nil {
		t.Fatalf("a write once space returned: got %v; want success", err)
	}
	if s, err := db.Secret(t.Context(), "p", "prod", fmt.Sprint("K", i)); err != nil || s.Version != 1 {
		t.Fatalf("the write after space returned: got %v, %v", s, err)
	}
}
