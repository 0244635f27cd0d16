package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

var _ rotate.BulkJobStore = (*Rotations)(nil)

// CreateBulkJob implements rotate.BulkJobStore. Servers starting jobs at
// once take turns on the table (its lock lets readers and updates of
// other rows' heartbeats wait only for this short transaction), so the
// bound holds across every server.
func (s *Rotations) CreateBulkJob(ctx context.Context, j *rotate.BulkJob, max int, live time.Time) error {
	items, err := sqlrow.BulkItems(j.Items)
	if err != nil {
		return err
	}
	return s.db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE bulk_jobs IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var running int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM bulk_jobs WHERE status = 'running' AND updated_at >= $1`,
			sqlrow.Nanos(live)).Scan(&running); err != nil {
			return err
		}
		if running >= max {
			return tokenward.Errorf(tokenward.ECONFLICT, "%d bulk rotations are running; wait for one to finish", running)
		}
		_, err := tx.Exec(ctx, `INSERT INTO bulk_jobs (`+sqlrow.BulkJobCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			j.ID, j.Owner, j.Status, j.Planned, sqlrow.Nanos(j.StartedAt), sqlrow.Nanos(j.UpdatedAt), sqlrow.Nanos(j.FinishedAt), items, j.Error)
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "bulk rotation %s exists already", tokenward.Printable(j.ID))
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
	tag, err := s.db.pool.Exec(ctx, `UPDATE bulk_jobs SET status = $1, updated_at = $2, finished_at = $3, items = $4, error = $5 WHERE id = $6`,
		j.Status, sqlrow.Nanos(j.UpdatedAt), sqlrow.Nanos(j.FinishedAt), items, j.Error, j.ID)
	if err != nil {
		return dbError("write", err)
	}
	if tag.RowsAffected() != 1 {
		return notFound("bulk rotation %s not found", tokenward.Printable(j.ID))
	}
	return nil
}

// BulkJob implements rotate.BulkJobStore.
func (s *Rotations) BulkJob(ctx context.Context, id string) (*rotate.BulkJob, error) {
	j, err := sqlrow.ScanBulkJob(s.db.pool.QueryRow(ctx, `SELECT `+sqlrow.BulkJobCols+` FROM bulk_jobs WHERE id = $1`, id))
	return found(j, err, "bulk rotation %s not found", tokenward.Printable(id))
}

// PruneBulkJobs implements rotate.BulkJobStore.
func (s *Rotations) PruneBulkJobs(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM bulk_jobs WHERE updated_at < $1`, sqlrow.Nanos(before))
	if err != nil {
		return 0, dbError("write", err)
	}
	return int(tag.RowsAffected()), nil
}
