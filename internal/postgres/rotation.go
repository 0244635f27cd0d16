package postgres

import (
	"context"
	"errors"
	"time"

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
