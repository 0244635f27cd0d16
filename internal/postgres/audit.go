package postgres

import (
	"context"
	"errors"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// The audit trail: DB is the broker's primary store (audit.Store, chaining
// in the database as an audit.ChainStore so that several servers keep one
// chain), the source of exports and verification (audit.Source), and
// answers searches (audit.Searcher).
var (
	_ audit.Store       = (*DB)(nil)
	_ audit.ChainStore  = (*DB)(nil)
	_ audit.BatchStore  = (*DB)(nil)
	_ audit.StoreSyncer = (*DB)(nil)
	_ audit.Source      = (*DB)(nil)
	_ audit.Searcher    = (*DB)(nil)
	_ audit.PruneStore  = (*DB)(nil)
)

// auditInsert stores a group of entries, of any size, in one statement
// (atomic, one round trip, one prepared statement): one array per column,
// unnested in the group's order so the identity id — the insertion order
// verify walks — follows seq. Across servers it does too: every writer
// inserts under auditChainLock, after reading the head the last one
// committed.
//
// An entry's CI facts are referenced by their audit_ci id, or, when the
// group stored them (ciInsert, earlier in its transaction), by their
// digest.
const auditInsert = `INSERT INTO audit_entries (` + sqlrow.AuditInsertCols + `)
SELECT ` + sqlrow.AuditCols + `, COALESCE(NULLIF(e.ci_id, 0), (SELECT c.id FROM audit_ci c WHERE c.digest = e.ci_digest))
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
	$9::text[], $10::integer[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::bigint[], $18::bytea[])
	WITH ORDINALITY AS e (` + sqlrow.AuditCols + `, ci_id, ci_digest, n)
ORDER BY n`

// ciInsert stores the CI objects audit_ci does not hold yet (digests $1,
// canonical JSON $2); ciSelect reads back their ids, which the store
// remembers once the transaction committed. Every audit writer holds
// auditChainLock, so no two insert at once; ON CONFLICT keeps an object
// once all the same.
const (
	ciInsert = `INSERT INTO audit_ci (digest, ci) SELECT d, c FROM unnest($1::bytea[], $2::text[]) AS u (d, c) ON CONFLICT (digest) DO NOTHING`
	ciSelect = `SELECT digest, id FROM audit_ci WHERE digest = ANY($1::bytea[])`
)

// queueCI queues, in b, the statements that store refs' new CI objects and
// resolve their ids.
func queueCI(b *pgx.Batch, refs *sqlrow.CIBatch) {
	if len(refs.New) == 0 {
		return
	}
	digests, texts := make([][]byte, len(refs.New)), make([]string, len(refs.New))
	for j := range refs.New {
		digests[j], texts[j] = refs.New[j].Digest[:], refs.New[j].JSON
	}
	b.Queue(ciInsert, digests, texts)
	b.Queue(ciSelect, digests).Query(func(rows pgx.Rows) error { return resolveCI(rows, refs) })
}

// resolveCI reads ciSelect's rows into refs.
func resolveCI(rows pgx.Rows, refs *sqlrow.CIBatch) error {
	var d []byte
	var id int64
	_, err := pgx.ForEachRow(rows, []any{&d, &id}, func() error {
		for j := range refs.New {
			if string(refs.New[j].Digest[:]) == string(d) {
				refs.Resolve(j, id)
			}
		}
		return nil
	})
	return err
}

// auditChainLock is the transaction-scoped advisory lock that every writer
// of the audit trail holds from reading the chain's head to commit
// ("twaudit" in ASCII, as a bigint): servers take turns at the head, so
// entries are chained, and their identity ids assigned, one writer at a
// time, in seq order.
const auditChainLock int64 = 0x74776175646974

// auditChainIdle bounds how long a writer holding auditChainLock may leave
// its transaction idle — between reading the head and sending the insert it
// only hashes, for milliseconds — before PostgreSQL ends its session and so
// frees the lock: a server that stalls or whose network breaks there stops
// every server's audit for seconds, not until TCP gives up on it.
const auditChainIdle = "5s"

// AppendChained stores es after the last stored entry, in one transaction
// under auditChainLock: it reads the head (the lock was granted after the
// previous writer's commit, so the head is that commit's last entry),
// links es to it in Go (audit.Link) and inserts them. It takes two round
// trips, pipelined — BEGIN, the lock and the head; then the insert and
// COMMIT — so the lock is held for about one round trip plus the insert
// and the commit. A connection lost before the commit rolls everything
// back.
func (db *DB) AppendChained(ctx context.Context, es []*tokenward.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	ctx = uncached(ctx) // the audit trail: no cache reads it
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return dbError("append audit entries", err)
	}
	// A connection left inside the transaction (an error below whose
	// ROLLBACK failed too) is closed by the pool rather than reused.
	defer conn.Release()
	seq, hash := int64(0), audit.GenesisHash
	head := &pgx.Batch{}
	head.Queue(`BEGIN`)
	head.Queue(`SELECT set_config('idle_in_transaction_session_timeout', $1, true)`, auditChainIdle)
	head.Queue(`SELECT pg_advisory_xact_lock($1)`, auditChainLock)
	head.Queue(`SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1`).QueryRow(func(r pgx.Row) error {
		if err := r.Scan(&seq, &hash); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	})
	if err := conn.SendBatch(ctx, head).Close(); err != nil {
		rollback(ctx, conn)
		return dbError("read the audit chain's head", err)
	}
	audit.Link(seq, hash, es)
	what := auditRange(es)
	refs := db.ciRefs.Plan(es)
	insert := &pgx.Batch{}
	queueCI(insert, refs)
	insert.Queue(auditInsert, auditInsertArgs(es, refs)...)
	insert.Queue(`COMMIT`).Exec(func(ct pgconn.CommandTag) error {
		if ct.String() != "COMMIT" {
			return errors.New("transaction rolled back")
		}
		return nil
	})
	if err := conn.SendBatch(ctx, insert).Close(); err != nil {
		rollback(ctx, conn)
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "%s: one exists already", what)
		}
		return dbError("append "+what, err)
	}
	db.ciRefs.Committed(refs)
	return nil
}

// rollback ends a failed transaction on conn, if conn still works.
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	if conn.Conn().PgConn().TxStatus() == 'I' || conn.Conn().IsClosed() {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	conn.Exec(rctx, `ROLLBACK`)
}

// AppendAudit stores e; ECONFLICT if its seq is taken.
func (db *DB) AppendAudit(ctx context.Context, e *tokenward.AuditEntry) error {
	return db.AppendAuditBatch(ctx, []*tokenward.AuditEntry{e})
}

// AppendAuditBatch stores es, chained by the caller (a journal's replay, a
// copy), in one transaction under auditChainLock, all or none; ECONFLICT if
// any seq is taken.
func (db *DB) AppendAuditBatch(ctx context.Context, es []*tokenward.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	ctx = uncached(ctx) // the audit trail: no cache reads it
	what := auditRange(es)
	refs := db.ciRefs.Plan(es)
	err := db.tx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, auditChainLock)
		queueCI(b, refs)
		b.Queue(auditInsert, auditInsertArgs(es, refs)...)
		return tx.SendBatch(ctx, b).Close()
	})
	if err == nil {
		db.ciRefs.Committed(refs)
	}
	if isConstraint(err) {
		if len(es) == 1 {
			return tokenward.Errorf(tokenward.ECONFLICT, "%s exists already", what)
		}
		return tokenward.Errorf(tokenward.ECONFLICT, "%s: one exists already", what)
	}
	return dbError("append "+what, err)
}

// auditRange names es in an error.
func auditRange(es []*tokenward.AuditEntry) string {
	if len(es) == 1 {
		return "audit entry " + strconv.FormatInt(es[0].Seq, 10)
	}
	return "audit entries " + strconv.FormatInt(es[0].Seq, 10) + ".." + strconv.FormatInt(es[len(es)-1].Seq, 10)
}

// auditInsertArgs returns auditInsert's arguments for es, whose CI facts
// refs places: one array per column.
func auditInsertArgs(es []*tokenward.AuditEntry, refs *sqlrow.CIBatch) []any {
	n := len(es)
	seq, tm := make([]int64, n), make([]int64, n)
	status := make([]int32, n)
	digests := make([][]byte, n) // nil: NULL
	for i, j := range refs.NewOf {
		if j >= 0 {
			digests[i] = refs.New[j].Digest[:]
		}
	}
	var text [13][]string // the text columns, in sqlrow.AuditCols' order
	for i := range text {
		text[i] = make([]string, n)
	}
	for i, e := range es {
		seq[i], tm[i], status[i] = e.Seq, e.Time.UnixNano(), int32(e.Status) // #nosec G115 -- HTTP status codes fit int32
		for j, v := range [...]string{e.RequestID, e.TokenID, e.TokenName, e.Action, e.Resource, e.Outcome, e.Reason,
			e.SourceIP, e.UserAgent, refs.InlineCI(es, i), sqlrow.JSONObject(e.Meta), e.PrevHash, e.Hash} {
			text[j][i] = v
		}
	}
	return []any{seq, tm, text[0], text[1], text[2], text[3], text[4], text[5], text[6],
		status, text[7], text[8], text[9], text[10], text[11], text[12], refs.IDs, digests}
}

// SyncAudit is a no-op: a PostgreSQL commit is durable when it returns
// (synchronous_commit is on by default; a database configured otherwise
// has chosen to lose recent commits on a crash, and its operator says so),
// so there is nothing left for the journal to wait for.
func (db *DB) SyncAudit() error { return nil }

// LastAudit returns the entry with the highest seq, or nil when there is
// none.
func (db *DB) LastAudit(ctx context.Context) (*tokenward.AuditEntry, error) {
	e, err := sqlrow.ScanAudit(db.pool.QueryRow(ctx, `SELECT `+sqlrow.AuditSelectCols+` FROM audit_entries ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return e, dbError("last audit entry", err)
}

// AppendCheckpoint stores a signed checkpoint.
func (db *DB) AppendCheckpoint(ctx context.Context, cp *audit.Checkpoint) error {
	_, err := db.pool.Exec(uncached(ctx), `INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES ($1, $2, $3, $4, $5)`,
		cp.Seq, cp.Hash, cp.Time.UnixNano(), cp.KeyID, cp.Signature)
	return dbError("append audit checkpoint "+strconv.FormatInt(cp.Seq, 10), err)
}

// auditPage is how many rows AuditEntries reads per query, so a long walk
// neither holds one snapshot open throughout nor loads the whole trail.
const auditPage = 1000

// AuditEntries yields every entry in insertion order (id, not seq).
func (db *DB) AuditEntries(ctx context.Context) iter.Seq2[*tokenward.AuditEntry, error] {
	return func(yield func(*tokenward.AuditEntry, error) bool) {
		var after int64
		for {
			page, err := queryAll(ctx, db.pool, func(r rowScanner) (*tokenward.AuditEntry, error) {
				return sqlrow.ScanAudit(sqlrow.WithID(r, &after))
			}, `SELECT id, `+sqlrow.AuditSelectCols+` FROM audit_entries WHERE id > $1 ORDER BY id LIMIT $2`, after, auditPage)
			if err != nil {
				yield(nil, dbError("audit entries", err))
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < auditPage {
				return
			}
		}
	}
}

// AuditCheckpoints returns every checkpoint in insertion order.
func (db *DB) AuditCheckpoints(ctx context.Context) ([]*audit.Checkpoint, error) {
	out, err := queryAll(ctx, db.pool, sqlrow.ScanCheckpoint, `SELECT `+sqlrow.CheckpointCols+` FROM audit_checkpoints ORDER BY id`)
	return out, dbError("audit checkpoints", err)
}

// LastAuditCheckpoint returns the newest checkpoint, or nil when there is
// none (audit.CheckpointTail).
func (db *DB) LastAuditCheckpoint(ctx context.Context) (*audit.Checkpoint, error) {
	cp, err := sqlrow.ScanCheckpoint(db.pool.QueryRow(ctx, `SELECT `+sqlrow.CheckpointCols+` FROM audit_checkpoints ORDER BY id DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return cp, dbError("last audit checkpoint", err)
}

// likePattern turns a '*'-only glob into a LIKE pattern (escape '\'), in
// which '%' and '_' are wildcards too.
func likePattern(glob string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`, `*`, `%`)
	return r.Replace(glob)
}

// SearchAudit returns the entries matching q, by seq.
func (db *DB) SearchAudit(ctx context.Context, q audit.Query) ([]*tokenward.AuditEntry, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	// add appends a condition whose one parameter is written $.
	add := func(cond string, a any) {
		args = append(args, a)
		where = append(where, strings.ReplaceAll(cond, "$", "$"+strconv.Itoa(len(args))))
	}
	if q.After > 0 {
		add(`seq > $`, q.After)
	}
	if q.Before > 0 {
		add(`seq < $`, q.Before)
	}
	if q.Token != "" {
		add(`(token_id = $ OR token_name = $)`, q.Token)
	}
	if q.Outcome != "" {
		add(`outcome = $`, q.Outcome)
	}
	if !q.Since.IsZero() {
		add(`time >= $`, sqlrow.BoundNanos(q.Since))
	}
	if !q.Until.IsZero() {
		add(`time < $`, sqlrow.BoundNanos(q.Until))
	}
	if q.Action != "" {
		add(`action LIKE $ ESCAPE '\'`, likePattern(q.Action))
	}
	if q.Resource != "" {
		add(`resource LIKE $ ESCAPE '\'`, likePattern(q.Resource))
	}
	query := `SELECT ` + sqlrow.AuditSelectCols + ` FROM audit_entries`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if q.Newest {
		query += ` ORDER BY seq DESC`
	} else {
		query += ` ORDER BY seq`
	}
	args = append(args, q.EffectiveLimit())
	query += ` LIMIT $` + strconv.Itoa(len(args))
	out, err := queryAll(ctx, db.pool, sqlrow.ScanAudit, query, args...)
	return out, dbError("search audit", err)
}

// AuditPruneAnchor implements audit.PruneStore.
func (db *DB) AuditPruneAnchor(ctx context.Context, before time.Time) (*tokenward.AuditEntry, []*audit.Checkpoint, error) {
	var seq *int64
	if err := db.pool.QueryRow(ctx, dollars(sqlrow.AuditPruneAnchorSQL), sqlrow.BoundNanos(before)).Scan(&seq); err != nil {
		return nil, nil, dbError("audit prune anchor", err)
	}
	if seq == nil {
		return nil, nil, nil
	}
	e, err := sqlrow.ScanAudit(db.pool.QueryRow(ctx, dollars(sqlrow.AuditAtSQL), *seq))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, dbError("audit prune anchor", err)
	}
	cps, err := queryAll(ctx, db.pool, sqlrow.ScanCheckpoint, dollars(sqlrow.AuditCheckpointsAtSQL), *seq)
	if err != nil {
		return nil, nil, dbError("audit prune anchor", err)
	}
	return e, cps, nil
}

// PruneAudit implements audit.PruneStore.
func (db *DB) PruneAudit(ctx context.Context, through int64, limit int) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, dollars(sqlrow.PruneAuditSQL), through, limit)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n >= int64(limit) {
			return nil
		}
		_, err = tx.Exec(ctx, dollars(sqlrow.PruneAuditCheckpointsSQL), through)
		return err
	})
	if err != nil {
		return 0, dbError("prune audit", err)
	}
	return int(n), nil
}
