package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// Rotations is the rotation records and policies of a DB: a rotate.Store.
type Rotations struct{ db *DB }

var _ rotate.Store = (*Rotations)(nil)

// Rotations returns the DB's rotation store.
func (db *DB) Rotations() *Rotations { return &Rotations{db} }

// CreateRotation implements rotate.Store. The unique index
// rotations_one_in_flight keeps one rotation per secret in flight across
// every server: the loser of a race gets rotate.ErrInFlight.
func (s *Rotations) CreateRotation(ctx context.Context, r *rotate.Rotation) error {
	r.Rev = 1
	_, err := s.db.pool.Exec(ctx, `INSERT INTO rotations (id, path, rotator, config, grace, reason, step, attempt,
		current_version, pending_version, created_at, updated_at, next_at, finished_at, error, rev)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		r.ID, r.Path, r.Rotator, sqlrow.JSONObject(r.Config), int64(r.Grace), r.Reason, string(r.Step), r.Attempt,
		r.CurrentVersion, r.PendingVersion, sqlrow.Nanos(r.CreatedAt), sqlrow.Nanos(r.UpdatedAt), sqlrow.Nanos(r.NextAt),
		sqlrow.Nanos(r.FinishedAt), r.Error, r.Rev)
	if isConstraint(err) {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.ConstraintName == "rotations_pkey" {
			return tokenward.Errorf(tokenward.ECONFLICT, "rotation %s exists already", r.ID)
		}
		return rotate.ErrInFlight
	}
	return dbError("write", err)
}

// UpdateRotation implements rotate.Store.
func (s *Rotations) UpdateRotation(ctx context.Context, r *rotate.Rotation) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE rotations SET step = $1, attempt = $2, current_version = $3,
		pending_version = $4, updated_at = $5, next_at = $6, finished_at = $7, error = $8, rev = rev + 1
		WHERE id = $9 AND rev = $10`,
		string(r.Step), r.Attempt, r.CurrentVersion, r.PendingVersion, sqlrow.Nanos(r.UpdatedAt), sqlrow.Nanos(r.NextAt),
		sqlrow.Nanos(r.FinishedAt), r.Error, r.ID, r.Rev)
	if err != nil {
		return dbError("write", err)
	}
	if tag.RowsAffected() != 1 {
		return rotate.ErrStale
	}
	r.Rev++
	return nil
}

// Rotation implements rotate.Store.
func (s *Rotations) Rotation(ctx context.Context, id string) (*rotate.Rotation, error) {
	r, err := sqlrow.ScanRotation(s.db.pool.QueryRow(ctx, `SELECT `+sqlrow.RotationCols+` FROM rotations WHERE id = $1`, id))
	return found(r, err, "no rotation %q", tokenward.Printable(id))
}

func (s *Rotations) rotations(ctx context.Context, query string, args ...any) ([]*rotate.Rotation, error) {
	return queryAll(ctx, s.db.pool, sqlrow.ScanRotation, `SELECT `+sqlrow.RotationCols+` FROM rotations `+query, args...)
}

// InFlight implements rotate.Store.
func (s *Rotations) InFlight(ctx context.Context) ([]*rotate.Rotation, error) {
	return s.rotations(ctx, `WHERE step NOT IN ('done', 'failed') ORDER BY created_at, seq`)
}

// History implements rotate.Store.
func (s *Rotations) History(ctx context.Context, path string, limit int) ([]*rotate.Rotation, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	return s.rotations(ctx, `WHERE $1 = '' OR path = $1 ORDER BY created_at DESC, seq DESC LIMIT $2`, path, lim)
}

// PutPolicy implements rotate.Store.
func (s *Rotations) PutPolicy(ctx context.Context, p *rotate.Policy) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO rotation_policies (path, every, cron, jitter, grace, rotator, config, disabled, last_at, next_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (path) DO UPDATE SET every = excluded.every, cron = excluded.cron, jitter = excluded.jitter,
		grace = excluded.grace, rotator = excluded.rotator, config = excluded.config, disabled = excluded.disabled,
		last_at = excluded.last_at, next_at = excluded.next_at`,
		p.Path, int64(p.Every), p.Cron, int64(p.Jitter), int64(p.Grace), p.Rotator, sqlrow.JSONObject(p.Config), sqlrow.BoolArg(p.Disabled),
		sqlrow.Nanos(p.LastAt), sqlrow.Nanos(p.NextAt))
	return dbError("write", err)
}

// Policy implements rotate.Store.
func (s *Rotations) Policy(ctx context.Context, path string) (*rotate.Policy, error) {
	p, err := sqlrow.ScanPolicy(s.db.pool.QueryRow(ctx, `SELECT `+sqlrow.PolicyCols+` FROM rotation_policies WHERE path = $1`, path))
	return found(p, err, "no rotation policy for %s", tokenward.Printable(path))
}

func (s *Rotations) policies(ctx context.Context, query string, args ...any) ([]*rotate.Policy, error) {
	return queryAll(ctx, s.db.pool, sqlrow.ScanPolicy, `SELECT `+sqlrow.PolicyCols+` FROM rotation_policies `+query, args...)
}

// Policies implements rotate.Store.
func (s *Rotations) Policies(ctx context.Context) ([]*rotate.Policy, error) {
	return s.policies(ctx, `ORDER BY path`)
}

// DuePolicies implements rotate.Store.
func (s *Rotations) DuePolicies(ctx context.Context, now time.Time) ([]*rotate.Policy, error) {
	return s.policies(ctx, `WHERE disabled = 0 AND next_at <= $1 ORDER BY next_at, path`, now.UnixNano())
}

// ClaimPolicyRun implements rotate.Store. The update's row lock makes the
// claims of servers whose leadership overlaps take turns: the second
// re-reads the row after the first commits, finds next_at moved, and
// updates nothing.
func (s *Rotations) ClaimPolicyRun(ctx context.Context, p *rotate.Policy, due time.Time) (bool, error) {
	tag, err := s.db.pool.Exec(ctx, `UPDATE rotation_policies SET last_at = $1, next_at = $2
		WHERE path = $3 AND next_at = $4 AND disabled = 0`,
		sqlrow.Nanos(p.LastAt), sqlrow.Nanos(p.NextAt), p.Path, sqlrow.Nanos(due))
	if err != nil {
		return false, dbError("write", err)
	}
	return tag.RowsAffected() == 1, nil
}

var _ rotate.BulkJobStore = (*Rotations)(nil)

// CreateBulkJob implements rotate.BulkJobStore. Servers starting jobs at
// once take turns on the table (its lock lets readers and updates of
// other rows' heartbeats wait only for this short transaction), so the
// bound holds across every server.
func (s *Rotations) CreateBulkJob(ctx context.Context, j *rotate.BulkJob, max int, live time.Time) error {
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
			j.ID, j.Owner, j.Status, j.Planned, sqlrow.Nanos(j.StartedAt), sqlrow.Nanos(j.UpdatedAt), sqlrow.Nanos(j.FinishedAt), sqlrow.BulkItems(j.Items), j.Error)
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "bulk rotation %s exists already", tokenward.Printable(j.ID))
		}
		return err
	})
}

// UpdateBulkJob implements rotate.BulkJobStore.
func (s *Rotations) UpdateBulkJob(ctx context.Context, j *rotate.BulkJob) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE bulk_jobs SET status = $1, updated_at = $2, finished_at = $3, items = $4, error = $5 WHERE id = $6`,
		j.Status, sqlrow.Nanos(j.UpdatedAt), sqlrow.Nanos(j.FinishedAt), sqlrow.BulkItems(j.Items), j.Error, j.ID)
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
