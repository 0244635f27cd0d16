package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
)

// leaderPID is the pid of the session holding the leader lock, 0 for none.
func leaderPID(t *testing.T, conn *pgx.Conn) uint32 {
	t.Helper()
	return lockHolderPID(t, conn, leaderLockKey)
}

// elector opens url as a server would, checking its locks every 20 ms.
func elector(t *testing.T, url string) (*postgres.DB, *logBuf) {
	t.Helper()
	db := mustOpenURL(t, url)
	db.LockCheckInterval = 20 * time.Millisecond
	logs := &logBuf{}
	db.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return db, logs
}

type leadResult struct {
	ctx    context.Context
	resign func()
	err    error
}

// campaign runs db.Lead in the background; the result arrives once it
// leads (or ctx ends). A leadership won is resigned when the test ends.
func campaign(t *testing.T, ctx context.Context, db *postgres.DB) <-chan leadResult {
	t.Helper()
	ch := make(chan leadResult, 1)
	go func() {
		lctx, resign, err := db.Lead(ctx)
		ch <- leadResult{lctx, resign, err}
	}()
	return ch
}

// won waits for a campaign to lead, failing after a generous deadline.
func won(t *testing.T, ch <-chan leadResult, who string) leadResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: Lead: %v", who, r.err)
		}
		t.Cleanup(r.resign)
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: did not lead", who)
	}
	return leadResult{}
}

// TestLeadOneLeader: of two servers on one database, one leads; the
// other waits for as long as the first leads, here 50 of its tries.
func TestLeadOneLeader(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	a, _ := elector(t, url)
	b, _ := elector(t, url)
	first := won(t, campaign(t, t.Context(), a), "first server")
	ctx, cancel := context.WithTimeout(t.Context(), 50*b.LockCheckInterval)
	defer cancel()
	r := <-campaign(t, ctx, b)
	if r.err == nil {
		r.resign()
		t.Fatal("second server: leads beside the first")
	}
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("second server: got %v; want it still waiting when its context ended", r.err)
	}
	if first.ctx.Err() != nil {
		t.Fatalf("first server: leadership ended: %v", context.Cause(first.ctx))
	}
}

// TestLeadHandover: the other server leads once the leader resigns, or its
// session ends (the database or an administrator ended it, the process
// died); the old leader's context ends with ErrLeadershipLost when its
// connection failed.
func TestLeadHandover(t *testing.T) {
	tests := []struct {
		name      string
		end       func(t *testing.T, admin *pgx.Conn, leader leadResult)
		wantCause error
	}{
		{"resign", func(t *testing.T, _ *pgx.Conn, l leadResult) { l.resign() }, context.Canceled},
		{"session ended", func(t *testing.T, admin *pgx.Conn, _ leadResult) {
			if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, int64(leaderPID(t, admin))); err != nil {
				t.Fatal(err)
			}
		}, postgres.ErrLeadershipLost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := pgtest.Shared(t).NewDatabase(t)
			admin := mustConn(t, url)
			a, _ := elector(t, url)
			b, logsB := elector(t, url)
			leader := won(t, campaign(t, t.Context(), a), "first server")
			pidA := leaderPID(t, admin)
			waiting := campaign(t, t.Context(), b)
			tc.end(t, admin, leader)
			<-leader.ctx.Done()
			if got := context.Cause(leader.ctx); !errors.Is(got, tc.wantCause) {
				t.Errorf("old leader's cause: got %v; want %v", got, tc.wantCause)
			}
			next := won(t, waiting, "second server")
			if next.ctx.Err() != nil {
				t.Fatalf("second server: leadership ended at once: %v", context.Cause(next.ctx))
			}
			if pid := leaderPID(t, admin); pid == 0 || pid == pidA {
				t.Fatalf("leader lock held by pid %d; want the second server's session (the first was %d)", pid, pidA)
			}
			if strings.Contains(logsB.String(), "ended this server's old") {
				t.Errorf("second server's log: got %q; want no session of its own ended", logsB)
			}
		})
	}
}

// TestLeadOwnOldSession: when the leader's connection breaks but the
// database keeps its session (and the lock), the leadership ends; the
// same server ends that session when it campaigns again, and leads.
func TestLeadOwnOldSession(t *testing.T) {
	c := pgtest.Shared(t)
	url := c.NewDatabase(t)
	p := startCutProxy(t, net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	viaProxy := strings.Replace(url, ":"+strconv.Itoa(c.Port)+"/", ":"+strconv.Itoa(p.port())+"/", 1)
	a, logs := elector(t, viaProxy)
	admin := mustConn(t, url)
	first := won(t, campaign(t, t.Context(), a), "leader")
	old := leaderPID(t, admin)
	p.cut() // the client side goes; the database's session stays
	<-first.ctx.Done()
	if got := context.Cause(first.ctx); !errors.Is(got, postgres.ErrLeadershipLost) {
		t.Fatalf("cause: got %v; want ErrLeadershipLost", got)
	}
	first.resign()
	won(t, campaign(t, t.Context(), a), "leader again")
	if pid := leaderPID(t, admin); pid == 0 || pid == old {
		t.Fatalf("leader lock held by pid %d; want a new session (the old was %d)", pid, old)
	}
	for _, want := range []string{"leadership lost", "ended this server's old database session, which still held the leader lock"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log: got %q; want %q", logs, want)
		}
	}
}

// TestClaimRotation: a rotation's claim is held by one session at a time
// (a second claimer waits for it, a claim on another rotation does not);
// when the holder's session ends, its context ends with ErrClaimLost and
// the waiter gets the claim.
func TestClaimRotation(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	a, _ := elector(t, url)
	b, _ := elector(t, url)
	admin := mustConn(t, url)
	ctx := t.Context()
	held, releaseA, err := a.Rotations().ClaimRotation(ctx, "rot_one")
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	_, releaseOther, err := b.Rotations().ClaimRotation(ctx, "rot_two")
	if err != nil {
		t.Fatalf("claim of another rotation: %v", err)
	}
	releaseOther()
	type claim struct {
		ctx     context.Context
		release func()
		err     error
	}
	waiting := make(chan claim, 1)
	go func() {
		c, r, err := b.Rotations().ClaimRotation(ctx, "rot_one")
		waiting <- claim{c, r, err}
	}()
	var holderPID, waiterPID int64
	waitFor(t, "the second claimer to wait", func() bool {
		admin.QueryRow(context.Background(), `SELECT coalesce(min(pid) FILTER (WHERE granted), 0), coalesce(min(pid) FILTER (WHERE NOT granted), 0)
			FROM pg_locks WHERE locktype = 'advisory' AND classid = x'74777263'::int::oid AND objsubid = 2`).Scan(&holderPID, &waiterPID)
		return holderPID != 0 && waiterPID != 0
	})
	select {
	case c := <-waiting:
		t.Fatalf("second claimer: got %v; want it waiting", c.err)
	default:
	}
	if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, holderPID); err != nil {
		t.Fatal(err)
	}
	<-held.Done()
	if got := context.Cause(held); !errors.Is(got, postgres.ErrClaimLost) {
		t.Errorf("lost claim's cause: got %v; want ErrClaimLost", got)
	}
	c := <-waiting
	if c.err != nil {
		t.Fatalf("second claimer after the holder's session ended: %v", c.err)
	}
	defer c.release()
	if c.ctx.Err() != nil {
		t.Fatalf("second claim ended at once: %v", context.Cause(c.ctx))
	}
}

// TestSessionLocksKeepThePasswordOut: when the database refuses the
// password (it was changed after the server started), the server lock,
// the leader's campaign and rotation claims fail without the password in
// their errors or logs.
func TestSessionLocksKeepThePasswordOut(t *testing.T) {
	c := pgtest.Shared(t)
	dbURL := c.NewDatabase(t)
	admin := mustConn(t, dbURL)
	role, password := "twlock_"+strings.ToLower(rand.Text()[:8]), "pw-"+rand.Text()
	if _, err := admin.Exec(t.Context(), `CREATE ROLE `+role+` LOGIN SUPERUSER PASSWORD '`+password+`'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mustConn(t, c.DSN).Exec(context.Background(), `DROP ROLE IF EXISTS `+role) })
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db, logs := elector(t, c.URL(role, password, strings.TrimPrefix(u.Path, "/")))
	if _, err := admin.Exec(t.Context(), `ALTER ROLE `+role+` PASSWORD 'changed-`+rand.Text()+`'`); err != nil {
		t.Fatal(err)
	}
	var errs []error
	_, err = db.LockServer(t.Context(), nil)
	errs = append(errs, err)
	_, err = db.LockMigration(t.Context(), nil)
	errs = append(errs, err)
	_, _, err = db.Rotations().ClaimRotation(t.Context(), "rot_1")
	errs = append(errs, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*db.LockCheckInterval)
	defer cancel()
	_, _, err = db.Lead(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lead: got %v; want it still campaigning when its context ended", err)
	}
	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d: got no error; want the password refused", i)
		}
		if !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("call %d: got %q; want the refusal described", i, err)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("call %d: the error holds the password: %q", i, err)
		}
	}
	if !strings.Contains(logs.String(), "leader lock not taken") {
		t.Errorf("log: got %q; want the campaign's failures logged", logs)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("log holds the password: %q", logs)
	}
}
