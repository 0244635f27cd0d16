package postgres

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaderLock is the advisory lock the leading server holds ("twlead" in
// ASCII, as a bigint): the one server that runs the background jobs.
const leaderLock int64 = 0x74776c656164

// ErrLeadershipLost is the cause of a leading context that ended because
// the connection holding the leader lock failed its check.
var ErrLeadershipLost = errors.New("postgres: the connection holding the leader lock failed")

// Lead waits until this server leads the servers on the database — it
// holds the leader lock, a session advisory lock on a connection of its
// own (outside the pool) — trying every LockCheckInterval; it returns
// ctx's error if ctx ends first. A leader that dies frees the lock with
// its session, so another server leads within about LockCheckInterval
// (after a crash or kill) or the keepalive time of sessionConfig (when its
// machine vanished from the network).
//
// The returned context ends when the leadership ends: ctx ended, resign
// was called, or the lock's connection failed its check (every
// LockCheckInterval, cause ErrLeadershipLost) — the database restarted,
// the network broke, an administrator ended the session: the lock may be
// another server's by then, so the jobs must stop. resign gives the lock
// up at once; call it in every case.
func (db *DB) Lead(ctx context.Context) (leading context.Context, resign func(), err error) {
	interval := cmp.Or(db.LockCheckInterval, time.Second)
	for {
		conn, err := db.tryLead(ctx)
		if conn != nil {
			return db.leading(ctx, conn, interval)
		}
		if err != nil && ctx.Err() == nil {
			db.logger().Debug("leader lock not taken", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// tryLead connects and tries the leader lock once. It returns the
// connection holding it, or nil and why not (nil error: another server
// leads). A session this DB led from before and that the database still
// keeps — its connection broke without the database noticing — is ended,
// so that it does not keep the lock from every server until the keepalive
// ends it.
func (db *DB) tryLead(ctx context.Context) (*pgx.Conn, error) {
	conn, s, err := db.connectSession(ctx)
	if err != nil {
		return nil, dbError("leader lock", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaderLock).Scan(&ok); err != nil || !ok {
		if err == nil {
			db.leadMu.Lock()
			old := db.leadSession
			db.leadMu.Unlock()
			var ended bool
			if ended, err = endSession(ctx, conn, old); ended {
				db.logger().Warn("ended this server's old database session, which still held the leader lock after its connection broke")
			}
		}
		conn.Close(context.WithoutCancel(ctx))
		return nil, dbError("leader lock", err)
	}
	db.leadMu.Lock()
	db.leadSession = s
	db.leadMu.Unlock()
	return conn, nil
}

// leading watches conn, which holds the leader lock, until the leadership
// ends.
func (db *DB) leading(ctx context.Context, conn *pgx.Conn, interval time.Duration) (context.Context, func(), error) {
	lctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(lctx, lockPingTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && lctx.Err() == nil {
				db.logger().Error("leadership lost: the connection holding the leader lock failed", "err", dbError("leader lock", err))
				cancel(ErrLeadershipLost)
				return
			}
		}
	}()
	var once sync.Once
	return lctx, func() {
		once.Do(func() {
			cancel(nil)
			<-done
			ctx, c := context.WithTimeout(context.Background(), lockPingTimeout)
			defer c()
			// Closing the session frees the lock too; unlocking first
			// frees it even if the close is slow to reach the database.
			conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, leaderLock)
			conn.Close(ctx)
		})
	}, nil
}
