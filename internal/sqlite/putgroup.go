package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokenward/tokenward"
)

// Secret writes are group-committed: writes that arrive while a commit is
// running share the next transaction, and so its fsync. One durable commit
// costs about a millisecond here whatever it holds, so writes one at a time
// capped the write rate at the disk's flush rate. Each write of a group
// runs in its own savepoint: one that fails (a version conflict) is rolled
// back alone, and the others commit. A group of one is a plain transaction.

// maxPutGroup bounds the writes of one group commit.
const maxPutGroup = 64

// putGroupTimeout bounds one group's transaction; it does not follow the
// leader's context, since the group holds other requests' writes.
const putGroupTimeout = 30 * time.Second

type putReq struct {
	meta *tokenward.Secret
	prev int
	v    *tokenward.SecretVersion
	tags string
	err  error // the write's own outcome inside the group
}

// putGroup commits r with whatever other writes are queued.
func (db *DB) putGroup(ctx context.Context, r *putReq) error {
	if err := db.puts.Do(ctx, r, db.commitPuts); err != nil {
		return diskFull(err)
	}
	return diskFull(r.err)
}

// commitPuts writes batch in one transaction. The error is the
// transaction's (every write failed); each write's own is in its err.
func (db *DB) commitPuts(ctx context.Context, batch []*putReq) error {
	ctx, cancel := context.WithTimeout(ctx, putGroupTimeout)
	defer cancel()
	if len(batch) == 1 {
		r := batch[0]
		err := db.tx(ctx, func(tx *sql.Tx) error { return db.putSecret(ctx, tx, r) })
		r.err = err
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		for _, r := range batch {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT put`); err != nil {
				return err
			}
			if r.err = db.putSecret(ctx, tx, r); r.err != nil {
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO put`); err != nil {
					return errors.Join(r.err, fmt.Errorf("sqlite: roll back a failed write: %w", err))
				}
			}
			if _, err := tx.ExecContext(ctx, `RELEASE put`); err != nil {
				return err
			}
		}
		return nil
	})
}
