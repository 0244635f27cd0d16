package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

var _ tokenward.LabelStore = (*DB)(nil)

// SecretLabels implements tokenward.LabelStore.
func (db *DB) SecretLabels(ctx context.Context, project, env, name string) (*tokenward.VersionLabels, error) {
	return secretLabels(ctx, db.read, project, env, name)
}

func secretLabels(ctx context.Context, q queryer, project, env, name string) (*tokenward.VersionLabels, error) {
	l := &tokenward.VersionLabels{}
	err := q.QueryRowContext(ctx, `SELECT s.version, (SELECT coalesce(max(version), 0) FROM secret_versions v
		WHERE v.project = s.project AND v.env = s.env AND v.name = s.name)
		FROM secrets s WHERE s.project = ? AND s.env = ? AND s.name = ?`, project, env, name).Scan(&l.Current, &l.Latest)
	if err != nil {
		return found(l, err, "secret %s/%s/%s not found", project, env, name)
	}
	return l, queryEach(ctx, q, func(r rowScanner) error {
		var label, rot string
		var n int
		if err := r.Scan(&label, &n, &rot); err != nil {
			return err
		}
		switch label {
		case tokenward.LabelPending:
			l.Pending, l.PendingRotation = n, rot
		case tokenward.LabelPrevious:
			l.Previous = n
		}
		return nil
	}, `SELECT label, version, rotation_id FROM secret_labels WHERE project = ? AND env = ? AND name = ?`, project, env, name)
}

// PutPendingVersion implements tokenward.LabelStore.
func (db *DB) PutPendingVersion(ctx context.Context, project, env, name, rotationID string, v *tokenward.SecretVersion) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		l, err := secretLabels(ctx, tx, project, env, name)
		if err != nil {
			return err
		}
		if v.Version != l.Latest+1 {
			return tokenward.Errorf(tokenward.ECONFLICT, "secret %s/%s/%s: version %d is taken; the next is %d", project, env, name, v.Version, l.Latest+1)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO secret_versions (project, env, name, version, ciphertext, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			project, env, name, v.Version, v.Ciphertext, v.CreatedAt.UnixNano(), v.CreatedBy); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO secret_labels (project, env, name, label, version, rotation_id) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (project, env, name, label) DO UPDATE SET version = excluded.version, rotation_id = excluded.rotation_id`,
			project, env, name, tokenward.LabelPending, v.Version, rotationID)
		return err
	})
}

// PromoteVersion implements tokenward.LabelStore.
func (db *DB) PromoteVersion(ctx context.Context, project, env, name string, n int, at time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		l, err := secretLabels(ctx, tx, project, env, name)
		if err != nil {
			return err
		}
		if l.Current == n {
			return nil // promoted already: a repeat after a crash
		}
		if l.Pending != n {
			return tokenward.Errorf(tokenward.ECONFLICT, "version %d of %s/%s/%s is not PENDING", n, project, env, name)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM secret_labels WHERE project = ? AND env = ? AND name = ?`, project, env, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO secret_labels (project, env, name, label, version) VALUES (?, ?, ?, ?, ?)`,
			project, env, name, tokenward.LabelPrevious, l.Current); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE secrets SET version = ?, updated_at = ? WHERE project = ? AND env = ? AND name = ?`,
			n, at.UnixNano(), project, env, name)
		return err
	})
}

// RestoreVersion implements tokenward.LabelStore.
func (db *DB) RestoreVersion(ctx context.Context, project, env, name string, n int, at time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		l, err := secretLabels(ctx, tx, project, env, name)
		if err != nil {
			return err
		}
		if l.Current == n {
			return nil
		}
		if l.Previous != n || n == 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "version %d of %s/%s/%s is not PREVIOUS", n, project, env, name)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM secret_labels WHERE project = ? AND env = ? AND name = ? AND label = ?`,
			project, env, name, tokenward.LabelPrevious); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE secrets SET version = ?, updated_at = ? WHERE project = ? AND env = ? AND name = ?`,
			n, at.UnixNano(), project, env, name)
		return err
	})
}

// UnlabelVersion implements tokenward.LabelStore.
func (db *DB) UnlabelVersion(ctx context.Context, project, env, name, label string, n int) error {
	if label != tokenward.LabelPending && label != tokenward.LabelPrevious {
		return tokenward.Errorf(tokenward.EINVALID, "only PENDING and PREVIOUS can be removed, not %q", label)
	}
	_, err := db.write.ExecContext(ctx, `DELETE FROM secret_labels WHERE project = ? AND env = ? AND name = ? AND label = ? AND version = ?`,
		project, env, name, label, n)
	return err
}

// AllSecrets lists every secret of every project (metadata only), by path:
// the catalog bulk rotation selects from.
func (db *DB) AllSecrets(ctx context.Context) ([]*tokenward.Secret, error) {
	return db.querySecrets(ctx, `ORDER BY project, env, name`)
}

// Rotations is the rotation records and policies of a DB: a rotate.Store.
type Rotations struct{ db *DB }

var _ rotate.Store = (*Rotations)(nil)

// Rotations returns the DB's rotation store.
func (db *DB) Rotations() *Rotations { return &Rotations{db} }

// CreateRotation implements rotate.Store.
func (s *Rotations) CreateRotation(ctx context.Context, r *rotate.Rotation) error {
	r.Rev = 1
	_, err := s.db.write.ExecContext(ctx, `INSERT INTO rotations (id, path, rotator, config, grace, reason, step, attempt,
		current_version, pending_version, created_at, updated_at, next_at, finished_at, error, rev)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Path, r.Rotator, sqlrow.JSONObject(r.Config), int64(r.Grace), r.Reason, string(r.Step), r.Attempt,
		r.CurrentVersion, r.PendingVersion, sqlrow.Nanos(r.CreatedAt), sqlrow.Nanos(r.UpdatedAt), sqlrow.Nanos(r.NextAt),
		sqlrow.Nanos(r.FinishedAt), r.Error, r.Rev)
	if isConstraint(err) {
		var n int
		if qerr := s.db.write.QueryRowContext(ctx, `SELECT count(*) FROM rotations WHERE id = ?`, r.ID).Scan(&n); qerr == nil && n > 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "rotation %s exists already", r.ID)
		}
		return rotate.ErrInFlight
	}
	return err
}

// UpdateRotation implements rotate.Store.
func (s *Rotations) UpdateRotation(ctx context.Context, r *rotate.Rotation) error {
	res, err := s.db.write.ExecContext(ctx, `UPDATE rotations SET step = ?, attempt = ?, current_version = ?,
		pending_version = ?, updated_at = ?, next_at = ?, finished_at = ?, error = ?, rev = rev + 1
		WHERE id = ? AND rev = ?`,
		string(r.Step), r.Attempt, r.CurrentVersion, r.PendingVersion, sqlrow.Nanos(r.UpdatedAt), sqlrow.Nanos(r.NextAt),
		sqlrow.Nanos(r.FinishedAt), r.Error, r.ID, r.Rev)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return rotate.ErrStale
	}
	r.Rev++
	return nil
}

// Rotation implements rotate.Store. It reads through the write connection
// so a runner always sees the last recorded step.
func (s *Rotations) Rotation(ctx context.Context, id string) (*rotate.Rotation, error) {
	r, err := sqlrow.ScanRotation(s.db.write.QueryRowContext(ctx, `SELECT `+sqlrow.RotationCols+` FROM rotations WHERE id = ?`, id))
	return found(r, err, "no rotation %q", printable(id))
}

func (s *Rotations) rotations(ctx context.Context, query string, args ...any) ([]*rotate.Rotation, error) {
	return queryAll(ctx, s.db.read, sqlrow.ScanRotation, `SELECT `+sqlrow.RotationCols+` FROM rotations `+query, args...)
}

// InFlight implements rotate.Store.
func (s *Rotations) InFlight(ctx context.Context) ([]*rotate.Rotation, error) {
	return s.rotations(ctx, `WHERE step NOT IN ('done', 'failed') ORDER BY created_at, rowid`)
}

// History implements rotate.Store.
func (s *Rotations) History(ctx context.Context, path string, limit int) ([]*rotate.Rotation, error) {
	if limit <= 0 {
		limit = -1
	}
	return s.rotations(ctx, `WHERE ? = '' OR path = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`, path, path, limit)
}

// PutPolicy implements rotate.Store.
func (s *Rotations) PutPolicy(ctx context.Context, p *rotate.Policy) error {
	_, err := s.db.write.ExecContext(ctx, `INSERT INTO rotation_policies (path, every, cron, jitter, grace, rotator, config, disabled, last_at, next_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (path) DO UPDATE SET every = excluded.every, cron = excluded.cron, jitter = excluded.jitter,
		grace = excluded.grace, rotator = excluded.rotator, config = excluded.config, disabled = excluded.disabled,
		last_at = excluded.last_at, next_at = excluded.next_at`,
		p.Path, int64(p.Every), p.Cron, int64(p.Jitter), int64(p.Grace), p.Rotator, sqlrow.JSONObject(p.Config), p.Disabled,
		sqlrow.Nanos(p.LastAt), sqlrow.Nanos(p.NextAt))
	return err
}

// Policy implements rotate.Store.
func (s *Rotations) Policy(ctx context.Context, path string) (*rotate.Policy, error) {
	p, err := sqlrow.ScanPolicy(s.db.write.QueryRowContext(ctx, `SELECT `+sqlrow.PolicyCols+` FROM rotation_policies WHERE path = ?`, path))
	return found(p, err, "no rotation policy for %s", printable(path))
}

func (s *Rotations) policies(ctx context.Context, query string, args ...any) ([]*rotate.Policy, error) {
	return queryAll(ctx, s.db.read, sqlrow.ScanPolicy, `SELECT `+sqlrow.PolicyCols+` FROM rotation_policies `+query, args...)
}

// Policies implements rotate.Store.
func (s *Rotations) Policies(ctx context.Context) ([]*rotate.Policy, error) {
	return s.policies(ctx, `ORDER BY path`)
}

// DuePolicies implements rotate.Store.
func (s *Rotations) DuePolicies(ctx context.Context, now time.Time) ([]*rotate.Policy, error) {
	return s.policies(ctx, `WHERE disabled = 0 AND next_at <= ? ORDER BY next_at, path`, now.UnixNano())
}

// ClaimPolicyRun implements rotate.Store.
func (s *Rotations) ClaimPolicyRun(ctx context.Context, p *rotate.Policy, due time.Time) (bool, error) {
	res, err := s.db.write.ExecContext(ctx, `UPDATE rotation_policies SET last_at = ?, next_at = ?
		WHERE path = ? AND next_at = ? AND disabled = 0`,
		sqlrow.Nanos(p.LastAt), sqlrow.Nanos(p.NextAt), p.Path, sqlrow.Nanos(due))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// printable bounds s for an error message.
func printable(s string) string {
	const max = 64
	b := []byte(s)
	if len(b) > max {
		b = b[:max]
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, string(b)), "?")
}

var _ rotate.BulkJobStore = (*Rotations)(nil)

// CreateBulkJob implements rotate.BulkJobStore. The count and the insert
// share a transaction on the one write connection, so the bound holds.
func (s *Rotations) CreateBulkJob(ctx context.Context, j *rotate.BulkJob, max int, live time.Time) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		var running int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM bulk_jobs WHERE status = 'running' AND updated_at >= ?`,
			sqlrow.Nanos(live)).Scan(&running); err != nil {
			return err
		}
		if running >= max {
			return tokenward.Errorf(tokenward.ECONFLICT, "%d bulk rotations are running; wait for one to finish", running)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO bulk_jobs (`+sqlrow.BulkJobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ID, j.Owner, j.Status, j.Planned, sqlrow.Nanos(j.StartedAt), sqlrow.Nanos(j.UpdatedAt), sqlrow.Nanos(j.FinishedAt), sqlrow.BulkItems(j.Items), j.Error)
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "bulk rotation %s exists already", printable(j.ID))
		}
		return err
	})
}

// UpdateBulkJob implements rotate.BulkJobStore.
func (s *Rotations) UpdateBulkJob(ctx context.Context, j *rotate.BulkJob) error {
	res, err := s.db.write.ExecContext(ctx, `UPDATE bulk_jobs SET status = ?, updated_at = ?, finished_at = ?, items = ?, error = ? WHERE id = ?`,
		j.Status, sqlrow.Nanos(j.UpdatedAt), sqlrow.Nanos(j.FinishedAt), sqlrow.BulkItems(j.Items), j.Error, j.ID)
	return changedRow(res, err, "bulk rotation %s not found", printable(j.ID))
}

// BulkJob implements rotate.BulkJobStore. It reads through the write
// connection, as Rotation does, so a poll sees the last update at once.
func (s *Rotations) BulkJob(ctx context.Context, id string) (*rotate.BulkJob, error) {
	j, err := sqlrow.ScanBulkJob(s.db.write.QueryRowContext(ctx, `SELECT `+sqlrow.BulkJobCols+` FROM bulk_jobs WHERE id = ?`, id))
	return found(j, err, "bulk rotation %s not found", printable(id))
}

// PruneBulkJobs implements rotate.BulkJobStore.
func (s *Rotations) PruneBulkJobs(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.write.ExecContext(ctx, `DELETE FROM bulk_jobs WHERE updated_at < ?`, sqlrow.Nanos(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
