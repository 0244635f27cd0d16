package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

var _ rotate.BulkJobStore = (*Rotations)(nil)

// CreateBulkJob implements rotate.BulkJobStore. The count and the insert
// share a transaction on the one write connection, so the bound holds.
func (s *Rotations) CreateBulkJob(ctx context.Context, j *rotate.BulkJob, max int, live time.Time) error {
	items, err := sqlrow.BulkItems(j.Items)
	if err != nil {
		return err
	}
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
			j.ID, j.Owner, j.Status, j.Planned, sqlrow.Nanos(j.StartedAt), sqlrow.Nanos(j.UpdatedAt), sqlrow.Nanos(j.FinishedAt), items, j.Error)
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "bulk rotation %s exists already", printable(j.ID))
		}
		return err
	})
}

// UpdateBulkJob implements rotate.BulkJobStore.
func (s *Rotations) UpdateBulkJob(ctx context.Context, j *rotate.BulkJob) error {
	items, err := sqlrow.BulkItems(j.Items)
	if err != nil {
		return err
	}
	res, err := s.db.write.ExecContext(ctx, `UPDATE bulk_jobs SET status = ?, updated_at = ?, finished_at = ?, items = ?, error = ? WHERE id = ?`,
		j.Status, sqlrow.Nanos(j.UpdatedAt), sqlrow.Nanos(j.FinishedAt), items, j.Error, j.ID)
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
