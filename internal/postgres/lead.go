package postgres

import (
	"cmp"
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/rotate"
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
	// One connection campaigns, kept between tries.
	var conn *pgx.Conn
	var s session
	for {
		if conn == nil {
			conn, s, err = db.connectSession(ctx)
		}
		if err == nil {
			var ok bool
			if ok, err = db.tryLead(ctx, conn); ok {
				db.leadMu.Lock()
				db.leadSession = s
				db.leadMu.Unlock()
				return db.leading(ctx, conn)
			}
		}
		if err != nil {
			if conn != nil {
				conn.Close(context.WithoutCancel(ctx))
				conn = nil
			}
			if ctx.Err() == nil {
				db.logger().Debug("leader lock not taken", "err", dbError("leader lock", err))
			}
		}
		select {
		case <-ctx.Done():
			if conn != nil {
				conn.Close(context.WithoutCancel(ctx))
			}
			return nil, nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// tryLead tries the leader lock once on conn. When another session holds
// it and that session is one this DB led from before, which the database
// still keeps because its connection broke without the database noticing,
// it ends that session, so that it does not keep the lock from every
// server until the keepalive ends it.
func (db *DB) tryLead(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaderLock).Scan(&ok); err != nil || ok {
		return ok, err
	}
	db.leadMu.Lock()
	old := db.leadSession
	db.leadMu.Unlock()
	ended, err := endSession(ctx, conn, old)
	if ended {
		db.logger().Warn("ended this server's old database session, which still held the leader lock after its connection broke")
	}
	return false, err
}

// watchSession checks conn every LockCheckInterval until ctx ends; the
// first failure calls lost and ends the watch. The channel is closed when
// the watch has ended.
func (db *DB) watchSession(ctx context.Context, conn *pgx.Conn, lost func(error)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(cmp.Or(db.LockCheckInterval, time.Second))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(ctx, lockPingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				lost(err)
				return
			}
		}
	}()
	return done
}

// leading watches conn, which holds the leader lock, until the leadership
// ends.
func (db *DB) leading(ctx context.Context, conn *pgx.Conn) (context.Context, func(), error) {
	lctx, cancel := context.WithCancelCause(ctx)
	done := db.watchSession(lctx, conn, func(err error) {
		db.logger().Error("leadership lost: the connection holding the leader lock failed", "err", dbError("leader lock", err))
		cancel(ErrLeadershipLost)
	})
	return lctx, releaser(cancel, done, conn, `SELECT pg_advisory_unlock($1)`, leaderLock), nil
}

// releaser returns the release of a lock held on conn under a watch
// (watchSession): it ends the watch, unlocks and closes the session.
// Closing the session frees the lock too; unlocking first frees it even
// if the close is slow to reach the database.
func releaser(cancel context.CancelCauseFunc, watched <-chan struct{}, conn *pgx.Conn, unlock string, args ...any) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel(nil)
			<-watched
			ctx, c := context.WithTimeout(context.Background(), lockPingTimeout)
			defer c()
			conn.Exec(ctx, unlock, args...)
			conn.Close(ctx)
		})
	}
}

// claimLocks is the first key of the two-key advisory locks that claim
// rotations ("twrc" in ASCII); the second is a hash of the rotation id.
const claimLocks int32 = 0x74777263

// claimKey is rotation id's second lock key. Two ids with one hash share
// a claim, which only makes one wait for the other.
func claimKey(id string) int32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int32(h.Sum32()) // #nosec G115 -- a hash used as an advisory-lock key: wrapping is wanted
}

var _ rotate.Claimer = (*Rotations)(nil)

// ClaimRotation implements rotate.Claimer: a session advisory lock keyed
// by the rotation's id, on a connection of its own, so a runner that dies
// frees it with its session, and the rotation can be resumed at once by
// another server. It waits for the claim while another session holds it.
// The connection is checked every LockCheckInterval; the returned context
// ends, cause ErrClaimLost, when the check fails.
func (s *Rotations) ClaimRotation(ctx context.Context, id string) (context.Context, func(), error) {
	conn, err := pgx.ConnectConfig(ctx, s.db.sessionConfig())
	if err != nil {
		return nil, nil, dbError("claim rotation", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, claimLocks, claimKey(id)); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, nil, dbError("claim rotation", err)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	done := s.db.watchSession(cctx, conn, func(err error) {
		s.db.logger().Error("rotation claim lost: its connection failed; the rotation's step stops", "rotation", id, "err", dbError("claim rotation", err))
		cancel(ErrClaimLost)
	})
	return cctx, releaser(cancel, done, conn, `SELECT pg_advisory_unlock($1, $2)`, claimLocks, claimKey(id)), nil
}

// ErrClaimLost is the cause of a rotation claim's context that ended
// because the connection holding the claim failed its check.
var ErrClaimLost = errors.New("postgres: the connection holding the rotation claim failed")
