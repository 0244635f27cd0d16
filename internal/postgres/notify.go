package postgres

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
)

var _ tokenward.ChangeClock = (*DB)(nil)

// changeChannel is the NOTIFY channel that migration 0500's triggers
// signal on, once per transaction that changes a cached table.
const changeChannel = "tokenward_change"

// Defaults of the change clock's timing (DB.ListenCheckInterval,
// DB.MaxStaleness).
const (
	// DefaultListenCheckInterval is how long the listener waits for a
	// notification before it pings its connection: a listener whose
	// connection died without a word (a network cut) is taken for down —
	// and caches bypassed — within this plus pingTimeout (1 s).
	DefaultListenCheckInterval = 500 * time.Millisecond
	// DefaultMaxStaleness is the last-resort bound on how long anything
	// cached on the clock is trusted while no notification arrives: the
	// generation moves on at least this often, so a notification lost by
	// a fault no check saw costs at most this much staleness.
	DefaultMaxStaleness = 10 * time.Second
)

// changeClock is the PostgreSQL store's tokenward.ChangeClock. Its state
// is one word, so that a reader sees the generation and whether it can be
// trusted together: the generation times two, plus one while the listener
// is down. Every change adds two and keeps the down bit.
type changeClock struct {
	state atomic.Uint64
}

const clockDown = 1

func newChangeClock() *changeClock {
	c := &changeClock{}
	c.state.Store(clockDown) // down until the listener is listening
	return c
}

func (c *changeClock) changed() { c.state.Add(2) }
func (c *changeClock) down()    { c.state.Or(clockDown) }

// up moves the generation, then clears the down bit: whatever was cached
// before the listener went down is never trusted again, since
// notifications sent meanwhile were lost.
func (c *changeClock) up() {
	c.changed()
	c.state.And(^uint64(clockDown))
}

func (c *changeClock) generation() (uint64, bool) {
	s := c.state.Load()
	return s >> 1, s&clockDown == 0
}

// Generation implements tokenward.ChangeClock: it moves on when this
// process's statements that may write end (before their caller gets
// control back), when another server's commit is notified (migration
// 0500's triggers, on every table whose rows are cached: not on a token's
// last use, not on the audit trail), when the listener reconnects, and at
// least every MaxStaleness. ok is false while the listener is down.
func (db *DB) Generation() (uint64, bool) {
	if db.clock == nil {
		return 0, false
	}
	return db.clock.generation()
}

// changeTracer moves the clock when a statement that may have written
// ends on a pool connection: anything but a SELECT (a COMMIT, an INSERT
// outside a transaction, a batch, a SELECT that writes through a WITH),
// failed ones too — a failed COMMIT may have committed. A write inside a
// transaction moves it twice (the statement, the COMMIT); only the second
// matters, and an extra move merely costs a re-read.
//
// Statements run under an uncached context (the audit trail's appends:
// one per request) do not move it: no cache reads what they write, and
// moving the clock on every request would empty the read cache as fast
// as it fills.
type changeTracer struct{ clock *changeClock }

// uncachedKey marks a context whose statements write only tables that no
// cache reads (uncached).
type uncachedKey struct{}

// uncached returns ctx marked so that its statements do not move the
// change clock. Use it only for writes to tables no cache reads, and that
// the notify triggers leave out (the audit trail).
func uncached(ctx context.Context) context.Context {
	return context.WithValue(ctx, uncachedKey{}, true)
}

func isUncached(ctx context.Context) bool {
	v, _ := ctx.Value(uncachedKey{}).(bool)
	return v
}

// writesKey marks the context of a statement that writes although its
// command tag will say SELECT (writesUnderSelect).
type writesKey struct{}

func (t changeTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if writesUnderSelect(data.SQL) {
		return context.WithValue(ctx, writesKey{}, true)
	}
	return ctx
}

func (t changeTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	writes, _ := ctx.Value(writesKey{}).(bool)
	if (data.Err != nil || !data.CommandTag.Select() || writes) && !isUncached(ctx) {
		t.clock.changed()
	}
}

// writesUnderSelect reports whether sql is a WITH query holding a
// data-modifying statement (WITH r AS (UPDATE … RETURNING …) SELECT …):
// it writes, but its command tag is the outer SELECT's, which the tracer
// would take for a read. Only WITH queries are looked into, so the reads
// on the hot paths cost one prefix check.
func writesUnderSelect(sql string) bool {
	s := strings.TrimLeft(sql, " \t\r\n")
	if len(s) < 4 || !strings.EqualFold(s[:4], "with") {
		return false
	}
	return dataModifying(s)
}

// dataModifying reports whether sql holds a parenthesized INSERT, UPDATE,
// DELETE or MERGE (a data-modifying statement inside a WITH). A scan, not
// a regexp: a package-level one costs every process's start (the CLI
// links this package), TestStartupDoesNoEagerWork.
func dataModifying(sql string) bool {
	for i := 0; i < len(sql); i++ {
		if sql[i] != '(' {
			continue
		}
		rest := strings.TrimLeft(sql[i+1:], " \t\r\n")
		for _, kw := range [...]string{"insert", "update", "delete", "merge"} {
			if len(rest) >= len(kw) && strings.EqualFold(rest[:len(kw)], kw) &&
				(len(rest) == len(kw) || !isIdentByte(rest[len(kw)])) {
				return true
			}
		}
	}
	return false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func (t changeTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (t changeTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t changeTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	if !isUncached(ctx) {
		t.clock.changed()
	}
}

func (t changeTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return ctx
}

func (t changeTracer) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {
	t.clock.changed()
}

// listener keeps a LISTEN on changeChannel on a connection of its own
// (outside the pool: a pooled connection would be handed to requests),
// moving the clock on every notification, and reconnects when it fails.
type listener struct {
	db    *DB
	clock *changeClock
	log   *slog.Logger
	stop  context.CancelFunc
	done  chan struct{}

	pid atomic.Uint32 // the listening session's backend pid, 0 while down (tests end it)
}

// startListener starts the listener; it returns once the first LISTEN is
// in place or failed (the clock is down then, and the listener keeps
// trying).
func (db *DB) startListener() {
	ctx, stop := context.WithCancel(context.Background())
	l := &listener{db: db, clock: db.clock, log: db.Logger, stop: stop, done: make(chan struct{})}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	conn := l.connect(ctx)
	db.listener = l
	go l.run(ctx, conn)
}

func (l *listener) close() {
	l.stop()
	<-l.done
}

// connect opens a connection and listens on it; nil when it failed.
func (l *listener) connect(ctx context.Context) *pgx.Conn {
	cfg := l.db.pool.Config().ConnConfig.Copy()
	cfg.Tracer = nil // LISTEN and pings write nothing
	cctx, cancel := context.WithTimeout(ctx, cmp.Or(cfg.ConnectTimeout, DefaultConnectTimeout))
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err == nil {
		if _, err = conn.Exec(cctx, `LISTEN `+changeChannel); err != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			l.log.Debug("change listener not connected", "err", dbError("listen", err))
		}
		return nil
	}
	l.pid.Store(conn.PgConn().PID())
	l.clock.up()
	return conn
}

func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	check := cmp.Or(l.db.ListenCheckInterval, DefaultListenCheckInterval)
	maxStale := cmp.Or(l.db.MaxStaleness, DefaultMaxStaleness)
	lastMove := time.Now()
	wasUp := conn != nil
	for ctx.Err() == nil {
		if time.Since(lastMove) >= maxStale {
			l.clock.changed()
			lastMove = time.Now()
		}
		if conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(check):
			}
			if conn = l.connect(ctx); conn != nil {
				lastMove = time.Now()
				if !wasUp {
					l.log.Info("change listener connected again: caches are used again")
				}
				wasUp = true
			}
			continue
		}
		err := l.wait(ctx, conn, check)
		if err == nil {
			l.clock.changed()
			lastMove = time.Now()
			continue
		}
		if errors.Is(err, errQuiet) || ctx.Err() != nil {
			continue
		}
		// Down before the connection closes: from here on no reader
		// trusts a cache, as notifications may be going missing.
		l.clock.down()
		l.pid.Store(0)
		l.log.Warn("change listener lost its connection: caches are bypassed until it is back", "err", dbError("listen", err))
		conn.Close(context.WithoutCancel(ctx))
		conn, wasUp = nil, false
	}
	if conn != nil {
		conn.Close(context.WithoutCancel(ctx))
	}
	l.clock.down()
}

// wait returns nil when a notification arrived within check, and an error
// when none did and the connection does not answer a ping within
// pingTimeout.
func (l *listener) wait(ctx context.Context, conn *pgx.Conn, check time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, check)
	_, err := conn.WaitForNotification(wctx)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(wctx.Err(), context.DeadlineExceeded) || conn.IsClosed() {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		return err
	}
	return errQuiet
}

// errQuiet is wait's answer when nothing was notified and the connection
// is alive.
var errQuiet = errors.New("no notification")
