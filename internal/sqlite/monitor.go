package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// This file implements core.MonitorStore: anomalies, the monitor's
// snapshot, stale-token notices, token grant narrowing and the archives of
// retired environments.

func (db *DB) AddAnomaly(ctx context.Context, r *monitor.Record) error {
	body, err := sqlrow.JSONText(r.Anomaly)
	if err != nil {
		return err
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO anomalies (id, rule, severity, token_id, explanation, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.ID, string(r.Rule), string(r.Severity), r.TokenID, r.Explanation, body, r.Time.UnixNano())
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "anomaly %s exists already", r.ID)
	}
	return err
}

// Anomalies lists anomalies, newest first, at most limit (0: no limit);
// only the unacknowledged ones when openOnly.
func (db *DB) Anomalies(ctx context.Context, openOnly bool, limit int) ([]*monitor.Record, error) {
	q := `SELECT ` + sqlrow.AnomalyCols + ` FROM anomalies`
	if openOnly {
		q += ` WHERE acked_at IS NULL`
	}
	q += ` ORDER BY created_at DESC, id`
	if limit > 0 {
		q += ` LIMIT ?`
	} else {
		q += ` LIMIT -1 OFFSET ?`
		limit = 0
	}
	return queryAll(ctx, db.read, sqlrow.ScanAnomaly, q, limit)
}

func (db *DB) Anomaly(ctx context.Context, id string) (*monitor.Record, error) {
	r, err := sqlrow.ScanAnomaly(db.read.QueryRowContext(ctx, `SELECT `+sqlrow.AnomalyCols+` FROM anomalies WHERE id = ?`, id))
	return found(r, err, "anomaly %s not found", id)
}

// AckAnomaly acknowledges an anomaly; acknowledging twice keeps the first.
func (db *DB) AckAnomaly(ctx context.Context, id, by string, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE anomalies SET acked_at = coalesce(acked_at, ?), acked_by = CASE WHEN acked_at IS NULL THEN ? ELSE acked_by END WHERE id = ?`, at.UnixNano(), by, id)
	return changedRow(res, err, "anomaly %s not found", id)
}

// SaveMonitorState implements core.MonitorStore: the upsert's WHERE skips
// the update when the stored cursor is newer, under the row's lock.
func (db *DB) SaveMonitorState(ctx context.Context, snapshot []byte, cursor int64, at time.Time) (bool, error) {
	res, err := db.write.ExecContext(ctx, `INSERT INTO monitor_state (id, snapshot, audit_cursor, updated_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, audit_cursor = excluded.audit_cursor, updated_at = excluded.updated_at
		WHERE monitor_state.audit_cursor <= excluded.audit_cursor`,
		snapshot, cursor, at.UnixNano())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// MonitorState returns the stored snapshot, or ENOTFOUND.
func (db *DB) MonitorState(ctx context.Context) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, `SELECT snapshot FROM monitor_state WHERE id = 1`).Scan(&b)
	return found(b, err, "no monitor state")
}

func (db *DB) StaleNotices(ctx context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := queryEach(ctx, db.read, func(r rowScanner) error {
		var id string
		var at time.Time
		if err := r.Scan(&id, sqlrow.TimeCol(&at)); err != nil {
			return err
		}
		out[id] = at
		return nil
	}, `SELECT token_id, notified_at FROM stale_notices`)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (db *DB) SetStaleNotice(ctx context.Context, tokenID string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO stale_notices (token_id, notified_at) VALUES (?, ?) ON CONFLICT (token_id) DO UPDATE SET notified_at = excluded.notified_at`, tokenID, at.UnixNano())
	return err
}

func (db *DB) ClearStaleNotice(ctx context.Context, tokenID string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM stale_notices WHERE token_id = ?`, tokenID)
	return err
}

// ClaimExpiryAlert implements core.MonitorStore.
func (db *DB) ClaimExpiryAlert(ctx context.Context, item string, at, lastBefore time.Time) (bool, error) {
	res, err := db.write.ExecContext(ctx, sqlrow.ClaimExpiryAlertSQL, item, at.UnixNano(), sqlrow.BoundNanos(lastBefore))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// PruneExpiryAlerts implements core.MonitorStore.
func (db *DB) PruneExpiryAlerts(ctx context.Context, before time.Time) error {
	_, err := db.write.ExecContext(ctx, sqlrow.PruneExpiryAlertsSQL, sqlrow.BoundNanos(before))
	return err
}

// ReplaceTokenGrants replaces the grants of an active token (retirement
// narrows them); ENOTFOUND for no active token, EINVALID for no grants.
func (db *DB) ReplaceTokenGrants(ctx context.Context, id string, gs tokenward.Grants) error {
	if len(gs) == 0 {
		return tokenward.Errorf(tokenward.EINVALID, "a token needs at least one grant; revoke it instead")
	}
	b, err := sqlrow.JSONText(gs)
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `UPDATE tokens SET grants = ? WHERE id = ? AND revoked_at IS NULL`, b, id)
	return changedRow(res, err, "no active token %s", id)
}

// RevokeStaleToken implements core.MonitorStore: one statement, so a use
// recorded by any server before it keeps the token.
func (db *DB) RevokeStaleToken(ctx context.Context, id string, usedAfter, at time.Time) (bool, error) {
	revoked := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND coalesce(last_used_at, 0) <= ?`,
			at.UnixNano(), id, sqlrow.BoundNanos(usedAfter))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if revoked = n == 1; revoked {
			return nil
		}
		var x int
		_, err = found(x, tx.QueryRowContext(ctx, `SELECT 1 FROM tokens WHERE id = ?`, id).Scan(&x), "token %s not found", id)
		return err
	})
	return revoked, err
}

const archivedSecretCols = `project, env, name, owner, description, tags, expires_at, version, created_at, updated_at, updated_by` // #nosec G101 -- a SQL column list, not a credential
const archivedVersionCols = `project, env, name, version, ciphertext, created_at, created_by, deleted_at, destroyed_at`
const archivedLabelCols = `project, env, name, label, version, rotation_id`

// ArchiveEnv moves every secret of project/env (with its versions) into the
// archive, in one transaction, and returns how many it moved. ECONFLICT if
// the environment is archived already, ENOTFOUND for no environment.
func (db *DB) ArchiveEnv(ctx context.Context, a *monitor.Archive) (int, error) {
	n := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := db.envExists(ctx, tx, a.Project, a.Env); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM secrets WHERE project = ? AND env = ?`, a.Project, a.Env).Scan(&n); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO archived_envs (project, env, secrets, archived_at, archived_by, purge_at) VALUES (?, ?, ?, ?, ?, ?)`,
			a.Project, a.Env, n, a.ArchivedAt.UnixNano(), a.ArchivedBy, a.PurgeAt.UnixNano())
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "environment %s/%s is archived already", a.Project, a.Env)
		}
		if err != nil {
			return err
		}
		for _, q := range []string{
			`INSERT INTO archived_secrets (` + archivedSecretCols + `) SELECT ` + archivedSecretCols + ` FROM secrets WHERE project = ? AND env = ?`,
			`INSERT INTO archived_secret_versions (` + archivedVersionCols + `) SELECT ` + archivedVersionCols + ` FROM secret_versions WHERE project = ? AND env = ?`,
			`INSERT INTO archived_secret_labels (` + archivedLabelCols + `) SELECT ` + archivedLabelCols + ` FROM secret_labels WHERE project = ? AND env = ?`,
			`DELETE FROM secret_labels WHERE project = ? AND env = ?`,
			`DELETE FROM secret_versions WHERE project = ? AND env = ?`,
			`DELETE FROM secrets WHERE project = ? AND env = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, a.Project, a.Env); err != nil {
				if isForeignKey(err) {
					return tokenward.Errorf(tokenward.ECONFLICT, "secrets of %s/%s are still referenced (rotation policies?); disable them first", a.Project, a.Env)
				}
				return err
			}
		}
		a.Secrets = n
		return nil
	})
	return n, err
}

// RestoreEnv moves an archived environment's secrets back; ENOTFOUND if it
// is not archived, ECONFLICT if a secret of the same name was written since.
func (db *DB) RestoreEnv(ctx context.Context, project, env string) (int, error) {
	n := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var x int
		err := tx.QueryRowContext(ctx, `SELECT secrets FROM archived_envs WHERE project = ? AND env = ?`, project, env).Scan(&x)
		if _, err := found(x, err, "environment %s/%s is not archived", project, env); err != nil {
			return err
		}
		var clash int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM secrets s JOIN archived_secrets a USING (project, env, name) WHERE s.project = ? AND s.env = ?`, project, env).Scan(&clash); err != nil {
			return err
		}
		if clash > 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "%d archived secrets of %s/%s were written again since; cannot restore over them", clash, project, env)
		}
		if err := tx.QueryRowContext(ctx, sqlrow.ArchivedAtSourcesSQL, project, env).Scan(&clash); err != nil {
			return err
		}
		if clash > 0 {
			return tokenward.ArchivedAtSources(clash, project, env)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM archived_secrets WHERE project = ? AND env = ?`, project, env).Scan(&n); err != nil {
			return err
		}
		for _, q := range []string{
			`INSERT INTO secrets (` + archivedSecretCols + `) SELECT ` + archivedSecretCols + ` FROM archived_secrets WHERE project = ? AND env = ?`,
			`INSERT INTO secret_versions (` + archivedVersionCols + `) SELECT ` + archivedVersionCols + ` FROM archived_secret_versions WHERE project = ? AND env = ?`,
			`INSERT INTO secret_labels (` + archivedLabelCols + `) SELECT ` + archivedLabelCols + ` FROM archived_secret_labels WHERE project = ? AND env = ?`,
			`DELETE FROM archived_envs WHERE project = ? AND env = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, project, env); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// Archives lists the archived environments, oldest first.
// PruneTokens implements core.MonitorStore.
func (db *DB) PruneTokens(ctx context.Context, before time.Time, limit int) ([]string, error) {
	var ids []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, sqlrow.PruneTokensSQL, before.UnixNano(), before.UnixNano(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		for _, q := range []string{sqlrow.PrunedStaleNoticesSQL, sqlrow.PrunedConsoleSessionsSQL} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// ActiveTokens implements core.MonitorStore.
func (db *DB) ActiveTokens(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, sqlrow.ActiveTokensSQL, now.UnixNano()).Scan(&n)
	return n, err
}

func (db *DB) Archives(ctx context.Context) ([]*monitor.Archive, error) {
	return queryAll(ctx, db.read, func(r rowScanner) (*monitor.Archive, error) {
		a := &monitor.Archive{}
		return a, r.Scan(&a.Project, &a.Env, &a.Secrets, sqlrow.TimeCol(&a.ArchivedAt), &a.ArchivedBy, sqlrow.TimeCol(&a.PurgeAt))
	}, `SELECT project, env, secrets, archived_at, archived_by, purge_at FROM archived_envs ORDER BY archived_at, project, env`)
}

// PurgeArchive deletes project/env's archive if its purge time is at or
// before now (its ciphertexts with it: the archived rows cascade) and
// returns it; nil when it is not due or not there.
func (db *DB) PurgeArchive(ctx context.Context, project, env string, now time.Time) (*monitor.Archive, error) {
	var gone *monitor.Archive
	err := db.tx(ctx, func(tx *sql.Tx) error {
		a := &monitor.Archive{}
		err := tx.QueryRowContext(ctx, `DELETE FROM archived_envs WHERE project = ? AND env = ? AND purge_at <= ?
			RETURNING project, env, secrets, archived_at, archived_by, purge_at`, project, env, now.UnixNano()).
			Scan(&a.Project, &a.Env, &a.Secrets, sqlrow.TimeCol(&a.ArchivedAt), &a.ArchivedBy, sqlrow.TimeCol(&a.PurgeAt))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		gone = a
		return err
	})
	if err != nil {
		return nil, err
	}
	return gone, nil
}
