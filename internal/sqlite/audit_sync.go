package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// AuditSync is how an audit group commit reaches the disk.
type AuditSync int

const (
	// AuditSyncNormal commits each group to the WAL without an fsync (a
	// process crash loses nothing: the commit is in the OS) and fsyncs the
	// WAL in the background at most SyncEvery later, which bounds what a
	// power failure or kernel crash can lose to that window.
	AuditSyncNormal AuditSync = iota
	// AuditSyncFull fsyncs every group commit before any request of the
	// group is answered.
	AuditSyncFull
)

// DefaultAuditSyncEvery is AuditStore.SyncEvery's default.
const DefaultAuditSyncEvery = 10 * time.Millisecond

// ParseAuditSync reads "normal" or "full".
func ParseAuditSync(s string) (AuditSync, error) {
	switch s {
	case "normal":
		return AuditSyncNormal, nil
	case "full":
		return AuditSyncFull, nil
	}
	return 0, tokenward.Errorf(tokenward.EINVALID, "audit sync %q: want normal or full", clipSync(s))
}

func (m AuditSync) String() string {
	if m == AuditSyncFull {
		return "full"
	}
	return "normal"
}

func clipSync(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// AuditStore is a DB as the audit broker's primary store, with its own
// durability for audit commits (secret and token writes stay synchronous=FULL
// whatever the mode). Set the fields, then Open; Close before the DB.
type AuditStore struct {
	*DB
	Sync AuditSync
	// SyncEvery is, in normal mode, the longest a committed entry waits for
	// the fsync that makes it survive a power failure.
	SyncEvery time.Duration
	// Logger gets failed background fsyncs (nil: not logged).
	Logger *slog.Logger

	mu      sync.Mutex
	running bool  // the background fsync runs: normal commits allowed
	dirty   bool  // a normal commit is not fsynced yet
	syncErr error // the last background fsync failed: commit FULL until one succeeds
	stop    chan struct{}
	done    chan struct{}
	fsync   func(path string) error // fsyncFile; tests make it fail

	stmtMu sync.Mutex
	stmts  *auditConnStmts // on the write connection

	// In normal mode audit commits do not checkpoint the WAL themselves (a
	// checkpoint with its two fsyncs stalled every ~200th commit, and every
	// request queued behind it): the background loop does, on its own
	// connection, after ckptCommits commits.
	ckpt      *sql.DB
	sinceCkpt int // normal commits since the last background checkpoint
}

// ckptCommits is how many normal audit commits pass between background
// checkpoints: a one-entry commit adds about five WAL pages, and SQLite's own
// automatic checkpoint comes at 1000.
const ckptCommits = 200

var (
	_ audit.Store       = (*AuditStore)(nil)
	_ audit.BatchStore  = (*AuditStore)(nil)
	_ audit.StoreSyncer = (*AuditStore)(nil)
)

// NewAuditStore returns an AuditStore over db with the given mode and the
// default sync interval.
func NewAuditStore(db *DB, mode AuditSync) *AuditStore {
	return &AuditStore{DB: db, Sync: mode, SyncEvery: DefaultAuditSyncEvery}
}

// Open starts the background fsync (normal mode).
func (s *AuditStore) Open() error {
	if s.DB == nil || s.write == nil {
		return errors.New("sqlite: audit store: database not open")
	}
	if s.Sync != AuditSyncNormal {
		return nil
	}
	if s.SyncEvery <= 0 || s.SyncEvery > time.Second {
		return tokenward.Errorf(tokenward.EINVALID, "audit sync interval %s: want from 1ns to 1s", s.SyncEvery)
	}
	var err error
	if s.ckpt, err = sql.Open("sqlite", "file:"+uriPath(s.file)+"?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)"); err != nil {
		return fmt.Errorf("sqlite: audit store: %w", err)
	}
	s.ckpt.SetMaxOpenConns(1)
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	go s.syncLoop()
	return nil
}

// Close stops the background fsync after a last one. It does not close
// the DB.
func (s *AuditStore) Close() error {
	if s.stop == nil {
		return nil
	}
	s.mu.Lock()
	s.running = false // later commits are FULL
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.stop = nil
	err := s.syncNow()
	if cerr := s.ckpt.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *AuditStore) syncLoop() {
	defer close(s.done)
	t := time.NewTicker(s.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.syncNow(); err != nil && s.Logger != nil {
				s.Logger.Error("audit WAL fsync failed; the next audit commit is fully synchronous", "err", err)
			}
			s.mu.Lock()
			due := s.sinceCkpt >= ckptCommits
			if due {
				s.sinceCkpt = 0
			}
			s.mu.Unlock()
			if due {
				// PASSIVE: never waits for readers or blocks the writer.
				if _, err := s.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil && s.Logger != nil {
					s.Logger.Warn("audit WAL checkpoint failed", "err", err)
				}
			}
		}
	}
}

// SyncAudit makes every audit commit so far durable (in normal mode, by
// the fsync the background loop would do).
func (s *AuditStore) SyncAudit() error { return s.syncNow() }

// syncNow fsyncs the WAL if a normal commit is waiting for it. fsync works
// on the file, not the descriptor, so our own descriptor flushes the frames
// SQLite wrote through its own.
func (s *AuditStore) syncNow() error {
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = false
	s.mu.Unlock()
	if !dirty {
		return nil
	}
	fsync := s.fsync
	if fsync == nil {
		fsync = fsyncFile
	}
	err := fsync(s.file + "-wal") // the WAL SQLite writes: a link's target's
	s.mu.Lock()
	if err != nil {
		// The next group commits FULL, which fsyncs these frames too, or
		// fails and refuses its requests.
		s.syncErr = err
		s.dirty = true
	} else {
		s.syncErr = nil
	}
	s.mu.Unlock()
	return err
}

func fsyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		// No WAL: SQLite checkpointed it into the database (synced) and
		// removed it on the last close.
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: audit sync: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqlite: audit sync: %w", err)
	}
	return nil
}

// AppendAuditBatch stores es in one transaction. In full mode, or in normal
// mode after a failed background fsync, the commit is fsynced; otherwise it
// is a WAL commit that the background fsync makes durable.
func (s *AuditStore) AppendAuditBatch(ctx context.Context, es []*tokenward.AuditEntry) error {
	return s.commitDirect(ctx, func(ctx context.Context, st *auditConnStmts, dc any) error { return st.commit(ctx, dc, es) })
}

// AppendCheckpoint stores cp as AppendAuditBatch stores entries: in normal
// mode without an fsync of its own, so it reaches the disk with the
// entries it signs, which are in the WAL before it. A checkpoint commit
// that fsynced every --audit-checkpoint-every entries (DB.AppendCheckpoint)
// was most of the journal ingester's blocking and a tenth of its CPU.
func (s *AuditStore) AppendCheckpoint(ctx context.Context, cp *audit.Checkpoint) error {
	err := s.commitDirect(ctx, func(ctx context.Context, st *auditConnStmts, dc any) error {
		return st.inTx(ctx, dc, func() error {
			_, err := st.ckptInsert.ExecContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: cp.Seq}, {Ordinal: 2, Value: cp.Hash},
				{Ordinal: 3, Value: cp.Time.UnixNano()}, {Ordinal: 4, Value: cp.KeyID}, {Ordinal: 5, Value: cp.Signature}})
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("sqlite: append audit checkpoint %d: %w", cp.Seq, err)
	}
	return nil
}

// commitDirect runs commit through appendDirect, FULL in full mode or after
// a failed background fsync and NORMAL otherwise, and keeps the background
// fsync's account.
func (s *AuditStore) commitDirect(ctx context.Context, commit func(ctx context.Context, st *auditConnStmts, dc any) error) error {
	s.mu.Lock()
	full := !s.running || s.syncErr != nil
	s.mu.Unlock()
	if err := s.appendDirect(ctx, !full, commit); err != nil {
		return diskFull(err)
	}
	s.mu.Lock()
	if full {
		s.syncErr, s.dirty = nil, false // this commit's fsync covered earlier frames
	} else {
		s.dirty = true
		s.sinceCkpt++
	}
	s.mu.Unlock()
	return nil
}

// appendDirect runs commit on the write connection, held for the purpose,
// with ctx without its cancellation (below).
// With normal it switches the connection to synchronous=NORMAL for this
// commit and puts it back to FULL before anyone else uses it (a connection
// that cannot be put back is discarded).
//
// It talks to the driver connection directly with statements prepared once
// per connection: database/sql's layers and parsing BEGIN and COMMIT were a
// third of a one-entry commit. A group of one is a single autocommit INSERT.
func (s *AuditStore) appendDirect(ctx context.Context, normal bool, commit func(ctx context.Context, st *auditConnStmts, dc any) error) error {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: audit commit: %w", err)
	}
	defer conn.Close()
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	// The statements run without ctx's cancellation: the driver watches a
	// cancellable context with a goroutine per statement, a third of an
	// insert's cost. ctx bounded the wait for the connection; a statement
	// is bounded by busy_timeout.
	ctx = context.WithoutCancel(ctx)
	return conn.Raw(func(dc any) error {
		st, err := s.stmtsFor(ctx, dc)
		if err != nil {
			return fmt.Errorf("sqlite: audit sync: %w", err)
		}
		if !normal {
			return commit(ctx, st, dc)
		}
		if _, err := st.normal.ExecContext(ctx, nil); err != nil {
			return fmt.Errorf("sqlite: audit sync: %w", err)
		}
		if _, err := st.noAutoCkpt.ExecContext(ctx, nil); err != nil {
			st.full.ExecContext(context.Background(), nil)
			return fmt.Errorf("sqlite: audit sync: %w", err)
		}
		err = commit(ctx, st, dc)
		// Not ctx: the connection must go back FULL even if ctx ended.
		_, rerr := st.full.ExecContext(context.Background(), nil)
		if _, aerr := st.autoCkpt.ExecContext(context.Background(), nil); rerr == nil {
			rerr = aerr
		}
		if rerr != nil {
			st.close()
			s.stmts = nil
			return fmt.Errorf("sqlite: audit sync reset: %w", errors.Join(driver.ErrBadConn, rerr, err))
		}
		return err
	})
}

// auditConnStmts are the audit commit's statements on one driver
// connection (the write connection).
type auditConnStmts struct {
	conn                 any
	clock                *walClock // the store's change clock (nil: none): audit commits keep the read cache
	normal, full, insert driver.StmtExecContext
	insertMany           driver.StmtExecContext // insertRows rows in one statement
	ckptInsert           driver.StmtExecContext // a row of audit_checkpoints
	ciInsert, ciSelect   driver.StmtExecContext // audit_ci's row of a CI object
	refs                 *sqlrow.CIRefs
	noAutoCkpt, autoCkpt driver.StmtExecContext // wal_autocheckpoint off, and back to SQLite's default
	closers              []driver.Stmt
	args                 []driver.NamedValue // insertRows' arguments, reused (under stmtMu)
}

func (st *auditConnStmts) close() {
	for _, c := range st.closers {
		c.Close()
	}
}

// stmtsFor returns the statements prepared on dc, preparing them the first
// time. A replaced connection's statements are dropped with it.
func (s *AuditStore) stmtsFor(ctx context.Context, dc any) (*auditConnStmts, error) {
	if s.stmts != nil && s.stmts.conn == dc {
		return s.stmts, nil
	}
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("driver connection cannot prepare statements")
	}
	st := &auditConnStmts{conn: dc, clock: s.DB.clock, refs: &s.DB.ciRefs}
	for _, p := range []struct {
		dst *driver.StmtExecContext
		q   string
	}{
		{&st.normal, `PRAGMA synchronous=NORMAL`},
		{&st.full, `PRAGMA synchronous=FULL`},
		{&st.noAutoCkpt, `PRAGMA wal_autocheckpoint=0`},
		{&st.autoCkpt, `PRAGMA wal_autocheckpoint=1000`}, // sqlite.go does not change the default
		{&st.insert, `INSERT INTO audit_entries (` + sqlrow.AuditInsertCols + `) VALUES ` + auditRowParams},
		{&st.insertMany, `INSERT INTO audit_entries (` + sqlrow.AuditInsertCols + `) VALUES ` + strings.Repeat(auditRowParams+", ", insertRows-1) + auditRowParams},
		{&st.ciInsert, ciInsert},
		{&st.ciSelect, ciSelect},
		{&st.ckptInsert, ckptInsert},
	} {
		ds, err := pc.PrepareContext(ctx, p.q)
		if err != nil {
			st.close()
			return nil, err
		}
		st.closers = append(st.closers, ds)
		if *p.dst, ok = ds.(driver.StmtExecContext); !ok {
			st.close()
			return nil, errors.New("driver statement cannot execute with a context")
		}
	}
	s.stmts = st
	return st, nil
}

// commit inserts es in one transaction: BEGIN (IMMEDIATE, from the
// connection string) … COMMIT, or an autocommit INSERT for one entry when
// there is no change clock to keep (an own commit's window needs the write
// lock held from before the insert) and its CI, if any, is known to be in
// audit_ci.
func (st *auditConnStmts) commit(ctx context.Context, dc any, es []*tokenward.AuditEntry) error {
	refs := st.refs.Plan(es)
	if len(es) == 1 && st.clock == nil && len(refs.New) == 0 {
		return st.insertOne(ctx, es[0], refs.IDs[0])
	}
	err := st.inTx(ctx, dc, func() error {
		for j, n := range refs.New {
			id, err := st.storeCI(ctx, n)
			if err != nil {
				return err
			}
			refs.Resolve(j, id)
		}
		// Rows go insertRows to a statement: a statement's own overhead
		// (the driver's call, SQLite's mutexes, reset) was half of a row's
		// cost.
		ids := refs.IDs
		for len(es) >= insertRows {
			if err := st.insertRows(ctx, es[:insertRows], ids[:insertRows]); err != nil {
				return err
			}
			es, ids = es[insertRows:], ids[insertRows:]
		}
		for i, e := range es {
			if err := st.insertOne(ctx, e, ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	st.refs.Committed(refs)
	return nil
}

// inTx runs fn in one transaction on dc: BEGIN (IMMEDIATE, from the
// connection string) … COMMIT, or a rollback if fn fails. The read cache
// holds no audit entries or checkpoints: the commit need not empty it
// (walClock.beginOwnCommit).
func (st *auditConnStmts) inTx(ctx context.Context, dc any, fn func() error) error {
	bc, ok := dc.(driver.ConnBeginTx)
	if !ok {
		return errors.New("sqlite: audit commit: driver connection cannot begin")
	}
	tx, err := bc.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return fmt.Errorf("sqlite: audit commit: %w", err)
	}
	own := st.clock != nil && st.clock.beginOwnCommit()
	if err := fn(); err != nil {
		if own { // while the write lock is held: no other commit yet
			st.clock.endOwnCommit(false)
		}
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	if own {
		st.clock.endOwnCommit(err == nil)
	}
	if err != nil {
		return fmt.Errorf("sqlite: audit commit: %w", err)
	}
	return nil
}

// storeCI returns n's id in audit_ci, inserting it if missing.
func (st *auditConnStmts) storeCI(ctx context.Context, n sqlrow.NewCI) (int64, error) {
	if _, err := st.ciInsert.ExecContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: n.Digest[:]}, {Ordinal: 2, Value: n.JSON}}); err != nil {
		return 0, fmt.Errorf("sqlite: store audit CI: %w", err)
	}
	q, ok := st.ciSelect.(driver.StmtQueryContext)
	if !ok {
		return 0, errors.New("sqlite: store audit CI: driver statement cannot query")
	}
	rows, err := q.QueryContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: n.Digest[:]}})
	if err != nil {
		return 0, fmt.Errorf("sqlite: store audit CI: %w", err)
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, fmt.Errorf("sqlite: store audit CI: %w", err)
	}
	id, ok := dest[0].(int64)
	if !ok || id <= 0 {
		return 0, fmt.Errorf("sqlite: store audit CI: id %v", dest[0])
	}
	return id, nil
}

const (
	auditRowParams = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	auditRowArgs   = 17
	insertRows     = 32
)

// auditRow is e's row of sqlrow.AuditInsertCols, its CI referenced by ciID
// (0: inline).
func auditRow(e *tokenward.AuditEntry, ciID int64) [auditRowArgs]any {
	ci, ref := "{}", any(ciID)
	if ciID <= 0 {
		ci, ref = sqlrow.JSONObject(e.CI), nil
	}
	return [auditRowArgs]any{e.Seq, e.Time.UnixNano(), e.RequestID, e.TokenID, e.TokenName, e.Action, e.Resource, e.Outcome, e.Reason,
		int64(e.Status), e.SourceIP, e.UserAgent, ci, sqlrow.JSONObject(e.Meta), e.PrevHash, e.Hash, ref}
}

// auditArgs appends e's row to args.
func auditArgs(args []driver.NamedValue, e *tokenward.AuditEntry, ciID int64) []driver.NamedValue {
	for _, v := range auditRow(e, ciID) {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
	}
	return args
}

func (st *auditConnStmts) insertRows(ctx context.Context, es []*tokenward.AuditEntry, ids []int64) error {
	args := st.args[:0]
	defer func() { st.args = args[:0] }()
	for i, e := range es {
		args = auditArgs(args, e, ids[i])
	}
	_, err := st.insertMany.ExecContext(ctx, args)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "audit entries %d..%d: one exists already", es[0].Seq, es[len(es)-1].Seq)
	}
	if err != nil {
		return fmt.Errorf("sqlite: append audit entries %d..%d: %w", es[0].Seq, es[len(es)-1].Seq, err)
	}
	return nil
}

func (st *auditConnStmts) insertOne(ctx context.Context, e *tokenward.AuditEntry, ciID int64) error {
	var buf [auditRowArgs]driver.NamedValue
	_, err := st.insert.ExecContext(ctx, auditArgs(buf[:0], e, ciID))
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "audit entry %d exists already", e.Seq)
	}
	if err != nil {
		return fmt.Errorf("sqlite: append audit entry %d: %w", e.Seq, err)
	}
	return nil
}
