package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// The audit trail: DB is the broker's primary store (audit.Store), the
// source of exports and verification (audit.Source), and answers searches
// (audit.Searcher).
var (
	_ audit.Store      = (*DB)(nil)
	_ audit.Source     = (*DB)(nil)
	_ audit.Searcher   = (*DB)(nil)
	_ audit.PruneStore = (*DB)(nil)
)

// AppendAudit stores e; ECONFLICT if its seq is taken.
func (db *DB) AppendAudit(ctx context.Context, e *tokenward.AuditEntry) error {
	return db.AppendAuditBatch(ctx, []*tokenward.AuditEntry{e})
}

// LastAudit returns the entry with the highest seq, or nil when there is
// none.
func (db *DB) LastAudit(ctx context.Context) (*tokenward.AuditEntry, error) {
	// The write connection: after a failed append the broker must see the
	// latest commit, whichever connection made it.
	e, err := sqlrow.ScanAudit(db.write.QueryRowContext(ctx, `SELECT `+sqlrow.AuditSelectCols+` FROM audit_entries ORDER BY seq DESC LIMIT 1`))
	return maybeOne(e, err, "last audit entry")
}

// AppendCheckpoint stores a signed checkpoint. Its commit keeps the read
// cache (a checkpoint is no cached read): as a plain write it emptied the
// cache every --audit-checkpoint-every entries, and under load every
// request in flight then went to SQL at once.
func (db *DB) AppendCheckpoint(ctx context.Context, cp *audit.Checkpoint) error {
	err := db.ownCommit(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, ckptInsert,
			cp.Seq, cp.Hash, cp.Time.UnixNano(), cp.KeyID, cp.Signature)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: append audit checkpoint %d: %w", cp.Seq, err)
	}
	return nil
}

// auditPage is how many rows AuditEntries reads per query, so a long walk
// does not hold one read transaction (and the WAL) open throughout.
const auditPage = 1000

// AuditEntries yields every entry in insertion order (rowid, not seq).
func (db *DB) AuditEntries(ctx context.Context) iter.Seq2[*tokenward.AuditEntry, error] {
	return func(yield func(*tokenward.AuditEntry, error) bool) {
		var after int64
		for {
			page, ids, err := db.auditPageAfter(ctx, after)
			if err != nil {
				yield(nil, err)
				return
			}
			for i, e := range page {
				if !yield(e, nil) {
					return
				}
				after = ids[i]
			}
			if len(page) < auditPage {
				return
			}
		}
	}
}

func (db *DB) auditPageAfter(ctx context.Context, after int64) ([]*tokenward.AuditEntry, []int64, error) {
	var out []*tokenward.AuditEntry
	var ids []int64
	err := queryEach(ctx, db.read, func(r rowScanner) error {
		var id int64
		e, err := sqlrow.ScanAudit(sqlrow.WithID(r, &id))
		if err != nil {
			return err
		}
		out, ids = append(out, e), append(ids, id)
		return nil
	}, `SELECT id, `+sqlrow.AuditSelectCols+` FROM audit_entries WHERE id > ? ORDER BY id LIMIT ?`, after, auditPage)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: audit entries: %w", err)
	}
	return out, ids, nil
}

// AuditCheckpoints returns every checkpoint in insertion order.
func (db *DB) AuditCheckpoints(ctx context.Context) ([]*audit.Checkpoint, error) {
	out, err := queryAll(ctx, db.read, sqlrow.ScanCheckpoint, `SELECT `+sqlrow.CheckpointCols+` FROM audit_checkpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit checkpoints: %w", err)
	}
	return out, nil
}

// LastAuditCheckpoint returns the newest checkpoint, or nil when there is
// none (audit.CheckpointTail).
func (db *DB) LastAuditCheckpoint(ctx context.Context) (*audit.Checkpoint, error) {
	cp, err := sqlrow.ScanCheckpoint(db.read.QueryRowContext(ctx, `SELECT `+sqlrow.CheckpointCols+` FROM audit_checkpoints ORDER BY id DESC LIMIT 1`))
	return maybeOne(cp, err, "last audit checkpoint")
}

// globEscape turns a '*'-only glob into SQLite GLOB syntax, in which '?'
// and '[' are wildcards too.
func globEscape(s string) string {
	r := strings.NewReplacer("[", "[[]", "?", "[?]")
	return r.Replace(s)
}

// SearchAudit returns the entries matching q, by seq.
func (db *DB) SearchAudit(ctx context.Context, q audit.Query) ([]*tokenward.AuditEntry, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if q.After > 0 {
		add(`seq > ?`, q.After)
	}
	if q.Before > 0 {
		add(`seq < ?`, q.Before)
	}
	if q.Token != "" {
		add(`(token_id = ? OR token_name = ?)`, q.Token, q.Token)
	}
	if q.Outcome != "" {
		add(`outcome = ?`, q.Outcome)
	}
	if !q.Since.IsZero() {
		add(`time >= ?`, sqlrow.BoundNanos(q.Since))
	}
	if !q.Until.IsZero() {
		add(`time < ?`, sqlrow.BoundNanos(q.Until))
	}
	if q.Action != "" {
		add(`action GLOB ?`, globEscape(q.Action))
	}
	if q.Resource != "" {
		add(`resource GLOB ?`, globEscape(q.Resource))
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
	query += ` LIMIT ?`
	args = append(args, q.EffectiveLimit())
	out, err := queryAll(ctx, db.read, sqlrow.ScanAudit, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search audit: %w", err)
	}
	return out, nil
}

var _ audit.BatchStore = (*DB)(nil)

// AppendAuditBatch stores es in one transaction (one durable commit for
// the group); ECONFLICT if any seq is taken, and then none is stored.
func (db *DB) AppendAuditBatch(ctx context.Context, es []*tokenward.AuditEntry) error {
	refs := db.ciRefs.Plan(es)
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for j, n := range refs.New {
			if _, err := tx.ExecContext(ctx, ciInsert, n.Digest[:], n.JSON); err != nil {
				return fmt.Errorf("sqlite: store audit CI: %w", err)
			}
			var id int64
			if err := tx.QueryRowContext(ctx, ciSelect, n.Digest[:]).Scan(&id); err != nil {
				return fmt.Errorf("sqlite: store audit CI: %w", err)
			}
			refs.Resolve(j, id)
		}
		// The insert is prepared once on the write connection: parsing it
		// for every group was most of an audited request's cost.
		stmt := tx.StmtContext(ctx, db.stmtAuditInsert)
		defer stmt.Close()
		for i, e := range es {
			row := auditRow(e, refs.IDs[i])
			_, err := stmt.ExecContext(ctx, row[:]...)
			if isConstraint(err) {
				return tokenward.Errorf(tokenward.ECONFLICT, "audit entry %d exists already", e.Seq)
			}
			if err != nil {
				return fmt.Errorf("sqlite: append audit entry %d: %w", e.Seq, err)
			}
		}
		return nil
	})
	if err == nil {
		db.ciRefs.Committed(refs)
	}
	return err
}

// ciInsert stores a CI object unless audit_ci has it; ciSelect finds its
// id.
const (
	ciInsert = `INSERT INTO audit_ci (digest, ci) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING`
	ciSelect = `SELECT id FROM audit_ci WHERE digest = ?`
	// ckptInsert stores an audit.Checkpoint.
	ckptInsert = `INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)`
)

// AuditPruneAnchor implements audit.PruneStore.
func (db *DB) AuditPruneAnchor(ctx context.Context, before time.Time) (*tokenward.AuditEntry, []*audit.Checkpoint, error) {
	var seq sql.NullInt64
	if err := db.read.QueryRowContext(ctx, sqlrow.AuditPruneAnchorSQL, sqlrow.BoundNanos(before)).Scan(&seq); err != nil {
		return nil, nil, fmt.Errorf("sqlite: audit prune anchor: %w", err)
	}
	if !seq.Valid {
		return nil, nil, nil
	}
	e, err := sqlrow.ScanAudit(db.read.QueryRowContext(ctx, sqlrow.AuditAtSQL, seq.Int64))
	if e, err = maybeOne(e, err, "audit prune anchor"); err != nil || e == nil {
		return nil, nil, err
	}
	cps, err := queryAll(ctx, db.read, sqlrow.ScanCheckpoint, sqlrow.AuditCheckpointsAtSQL, seq.Int64)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: audit prune anchor: %w", err)
	}
	return e, cps, nil
}

// PruneAudit implements audit.PruneStore.
func (db *DB) PruneAudit(ctx context.Context, through int64, limit int) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlrow.PruneAuditSQL, through, limit)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n >= int64(limit) {
			return err
		}
		_, err = tx.ExecContext(ctx, sqlrow.PruneAuditCheckpointsSQL, through)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune audit: %w", err)
	}
	return int(n), nil
}
