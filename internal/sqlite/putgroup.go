package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
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
	done chan error
}

type putGroupState struct {
	mu      sync.Mutex
	pending []*putReq
	leading bool
}

// putGroup queues r for the next group commit and waits for its result.
// The first caller to find no commit running leads: it commits what is
// queued (its own write included) and hands the lead on if more arrived.
func (db *DB) putGroup(ctx context.Context, r *putReq) error {
	g := &db.puts
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if g.leading {
		g.mu.Unlock()
		// No early return on ctx: the leader may be committing r.
		return <-r.done
	}
	g.leading = true
	g.mu.Unlock()
	db.leadPutGroups(ctx, true)
	return <-r.done
}

func (db *DB) leadPutGroups(ctx context.Context, once bool) {
	g := &db.puts
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxPutGroup)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		if n > 0 {
			err := db.commitPuts(ctx, batch)
			for _, r := range batch {
				if err != nil {
					r.done <- err
				} else {
					r.done <- r.err
				}
			}
		}
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.leading = false
			g.pending = nil
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		if once {
			// The caller's own write is done: let it answer, and lead the
			// rest from a goroutine of their own.
			go db.leadPutGroups(context.WithoutCancel(ctx), false)
			return
		}
	}
}

// commitPuts writes batch in one transaction. The error is the
// transaction's (every write failed); each write's own is in its err.
func (db *DB) commitPuts(ctx context.Context, batch []*putReq) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), putGroupTimeout)
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
