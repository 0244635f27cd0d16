package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// This file implements core.MonitorStore: anomalies, the monitor's
// snapshot, stale-token notices, token grant narrowing and the archives of
// retired environments.
var _ core.MonitorStore = (*DB)(nil)

func (db *DB) AddAnomaly(ctx context.Context, r *monitor.Record) error {
	body, err := sqlrow.JSONText(r.Anomaly)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO anomalies (id, rule, severity, token_id, explanation, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		r.ID, string(r.Rule), string(r.Severity), r.TokenID, r.Explanation, body, r.Time.UnixNano())
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "anomaly %s exists already", r.ID)
	}
	return dbError("add anomaly", err)
}

// Anomalies lists anomalies, newest first, at most limit (0: no limit);
// only the unacknowledged ones when openOnly.
func (db *DB) Anomalies(ctx context.Context, openOnly bool, limit int) ([]*monitor.Record, error) {
	q := `SELECT ` + sqlrow.AnomalyCols + ` FROM anomalies`
	if openOnly {
		q += ` WHERE acked_at IS NULL`
	}
	var max any // LIMIT NULL: no limit
	if limit > 0 {
		max = limit
	}
	out, err := queryAll(ctx, db.pool, sqlrow.ScanAnomaly, q+` ORDER BY created_at DESC, id LIMIT $1`, max)
	return out, dbError("anomalies", err)
}

func (db *DB) Anomaly(ctx context.Context, id string) (*monitor.Record, error) {
	r, err := sqlrow.ScanAnomaly(db.pool.QueryRow(ctx, `SELECT `+sqlrow.AnomalyCols+` FROM anomalies WHERE id = $1`, id))
	r, err = found(r, err, "anomaly %s not found", id)
	return r, dbError("anomaly", err)
}

// AckAnomaly acknowledges an anomaly; acknowledging twice keeps the first.
func (db *DB) AckAnomaly(ctx context.Context, id, by string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE anomalies SET acked_at = coalesce(acked_at, $1), acked_by = CASE WHEN acked_at IS NULL THEN $2 ELSE acked_by END WHERE id = $3`, at.UnixNano(), by, id)
	return dbError("acknowledge anomaly", changedRow(tag, err, "anomaly %s not found", id))
}

// SaveMonitorState implements core.MonitorStore: the upsert's WHERE skips
// the update when the stored cursor is newer, under the row's lock.
func (db *DB) SaveMonitorState(ctx context.Context, snapshot []byte, cursor int64, at time.Time) (bool, error) {
	tag, err := db.pool.Exec(ctx, `INSERT INTO monitor_state (id, snapshot, audit_cursor, updated_at) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, audit_cursor = excluded.audit_cursor, updated_at = excluded.updated_at
		WHERE monitor_state.audit_cursor <= excluded.audit_cursor`,
		snapshot, cursor, at.UnixNano())
	if err != nil {
		return false, dbError("save monitor state", err)
	}
	return tag.RowsAffected() == 1, nil
}

// MonitorState returns the stored snapshot, or ENOTFOUND.
func (db *DB) MonitorState(ctx context.Context) ([]byte, error) {
	var b []byte
	err := db.pool.QueryRow(ctx, `SELECT snapshot FROM monitor_state WHERE id = 1`).Scan(&b)
	b, err = found(b, err, "no monitor state")
	return b, dbError("monitor state", err)
}

func (db *DB) StaleNotices(ctx context.Context) (map[string]time.Time, error) {
	type notice struct {
		id string
		at time.Time
	}
	list, err := queryAll(ctx, db.pool, func(r rowScanner) (n notice, err error) {
		return n, r.Scan(&n.id, sqlrow.TimeCol(&n.at))
	}, `SELECT token_id, notified_at FROM stale_notices`)
	if err != nil {
		return nil, dbError("stale notices", err)
	}
	out := make(map[string]time.Time, len(list))
	for _, n := range list {
		out[n.id] = n.at
	}
	return out, nil
}

func (db *DB) SetStaleNotice(ctx context.Context, tokenID string, at time.Time) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO stale_notices (token_id, notified_at) VALUES ($1, $2) ON CONFLICT (token_id) DO UPDATE SET notified_at = excluded.notified_at`, tokenID, at.UnixNano())
	return dbError("set stale notice", err)
}

func (db *DB) ClearStaleNotice(ctx context.Context, tokenID string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM stale_notices WHERE token_id = $1`, tokenID)
	return dbError("clear stale notice", err)
}

// ClaimExpiryAlert implements core.MonitorStore.
func (db *DB) ClaimExpiryAlert(ctx context.Context, item string, at, lastBefore time.Time) (bool, error) {
	tag, err := db.pool.Exec(ctx, dollars(sqlrow.ClaimExpiryAlertSQL), item, at.UnixNano(), sqlrow.BoundNanos(lastBefore))
	if err != nil {
		return false, dbError("claim expiry alert", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PruneExpiryAlerts implements core.MonitorStore.
func (db *DB) PruneExpiryAlerts(ctx context.Context, before time.Time) error {
	_, err := db.pool.Exec(ctx, dollars(sqlrow.PruneExpiryAlertsSQL), sqlrow.BoundNanos(before))
	return dbError("prune expiry alerts", err)
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
	tag, err := db.pool.Exec(ctx, `UPDATE tokens SET grants = $1 WHERE id = $2 AND revoked_at IS NULL`, b, id)
	return dbError("replace token grants", changedRow(tag, err, "no active token %s", id))
}

// RevokeStaleToken implements core.MonitorStore: one statement, so a use
// recorded by any server before it keeps the token.
func (db *DB) RevokeStaleToken(ctx context.Context, id string, usedAfter, at time.Time) (bool, error) {
	var revoked, exists bool
	err := db.pool.QueryRow(ctx, `WITH r AS (
		UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND coalesce(last_used_at, 0) <= $3 RETURNING id)
		SELECT EXISTS (SELECT 1 FROM r), EXISTS (SELECT 1 FROM tokens WHERE id = $2)`,
		at.UnixNano(), id, sqlrow.BoundNanos(usedAfter)).Scan(&revoked, &exists)
	if err != nil {
		return false, dbError("revoke stale token", err)
	}
	if !revoked && !exists {
		return false, notFound("token %s not found", id)
	}
	return revoked, nil
}

const archivedSecretCols = `project, env, name, owner, description, tags, expires_at, version, created_at, updated_at, updated_by` // #nosec G101 -- a SQL column list, not a credential
const archivedVersionCols = `project, env, name, version, ciphertext, created_at, created_by, deleted_at, destroyed_at`
const archivedLabelCols = `project, env, name, label, version, rotation_id`
const archiveCols = `project, env, secrets, archived_at, archived_by, purge_at`

// ArchiveEnv moves every secret of project/env (with its versions and
// labels) into the archive, in one transaction, and returns how many it
// moved. ECONFLICT if the environment is archived already, ENOTFOUND for
// no environment.
//
// The environment's row and its secrets' rows are locked first: a secret
// another server is writing in the environment (whose insert holds a key
// share lock on them) commits before the count, and none starts until the
// move is done, so the count is what moved.
func (db *DB) ArchiveEnv(ctx context.Context, a *monitor.Archive) (int, error) {
	n := 0
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := lockEnv(ctx, tx, a.Project, a.Env); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM secrets WHERE project = $1 AND env = $2 FOR UPDATE) s`, a.Project, a.Env).Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO archived_envs (`+archiveCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			a.Project, a.Env, n, a.ArchivedAt.UnixNano(), a.ArchivedBy, a.PurgeAt.UnixNano())
		if isConstraint(err) {
			return tokenward.Errorf(tokenward.ECONFLICT, "environment %s/%s is archived already", a.Project, a.Env)
		}
		if err != nil {
			return err
		}
		for _, q := range []string{
			`INSERT INTO archived_secrets (` + archivedSecretCols + `) SELECT ` + archivedSecretCols + ` FROM secrets WHERE project = $1 AND env = $2`,
			`INSERT INTO archived_secret_versions (` + archivedVersionCols + `) SELECT ` + archivedVersionCols + ` FROM secret_versions WHERE project = $1 AND env = $2`,
			`INSERT INTO archived_secret_labels (` + archivedLabelCols + `) SELECT ` + archivedLabelCols + ` FROM secret_labels WHERE project = $1 AND env = $2`,
			`DELETE FROM secret_labels WHERE project = $1 AND env = $2`,
			`DELETE FROM secret_versions WHERE project = $1 AND env = $2`,
			`DELETE FROM secrets WHERE project = $1 AND env = $2`,
		} {
			if _, err := tx.Exec(ctx, q, a.Project, a.Env); err != nil {
				if isForeignKey(err) {
					return tokenward.Errorf(tokenward.ECONFLICT, "secrets of %s/%s are still referenced (rotation policies?); disable them first", a.Project, a.Env)
				}
				return err
			}
		}
		a.Secrets = n
		return nil
	})
	if err != nil {
		return 0, dbError("archive environment", err)
	}
	return n, nil
}

// lockEnv locks project/env's row for the transaction; ENOTFOUND names the
// project or the environment that does not exist.
func lockEnv(ctx context.Context, tx pgx.Tx, project, env string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM environments WHERE project = $1 AND name = $2 FOR UPDATE`, project, env).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		if err := envExists(ctx, tx, project, env); err != nil {
			return err // names the project when that is what is missing
		}
		return notFound("environment %s/%s not found", project, env)
	}
	return err
}

// RestoreEnv moves an archived environment's secrets back; ENOTFOUND if it
// is not archived, ECONFLICT if a secret of the same name was written since.
// The archive's row is locked first, so of two servers restoring at once
// the second finds it gone.
func (db *DB) RestoreEnv(ctx context.Context, project, env string) (int, error) {
	n := 0
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var x int
		err := tx.QueryRow(ctx, `SELECT secrets FROM archived_envs WHERE project = $1 AND env = $2 FOR UPDATE`, project, env).Scan(&x)
		if _, err := found(x, err, "environment %s/%s is not archived", project, env); err != nil {
			return err
		}
		var clash int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM secrets s JOIN archived_secrets a USING (project, env, name) WHERE s.project = $1 AND s.env = $2`, project, env).Scan(&clash); err != nil {
			return err
		}
		if clash > 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "%d archived secrets of %s/%s were written again since; cannot restore over them", clash, project, env)
		}
		// Under the archived secrets' path locks (claimPath), so that no
		// dynamic source takes one of their paths meanwhile.
		if _, err := tx.Exec(ctx, "SELECT "+pathLock("project", "env", "name")+" FROM archived_secrets WHERE project = $1 AND env = $2 ORDER BY name", project, env); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, dollars(sqlrow.ArchivedAtSourcesSQL), project, env).Scan(&clash); err != nil {
			return err
		}
		if clash > 0 {
			return tokenward.ArchivedAtSources(clash, project, env)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM archived_secrets WHERE project = $1 AND env = $2`, project, env).Scan(&n); err != nil {
			return err
		}
		for _, q := range []string{
			`INSERT INTO secrets (` + archivedSecretCols + `) SELECT ` + archivedSecretCols + ` FROM archived_secrets WHERE project = $1 AND env = $2`,
			`INSERT INTO secret_versions (` + archivedVersionCols + `) SELECT ` + archivedVersionCols + ` FROM archived_secret_versions WHERE project = $1 AND env = $2`,
			`INSERT INTO secret_labels (` + archivedLabelCols + `) SELECT ` + archivedLabelCols + ` FROM archived_secret_labels WHERE project = $1 AND env = $2`,
			`DELETE FROM archived_envs WHERE project = $1 AND env = $2`,
		} {
			if _, err := tx.Exec(ctx, q, project, env); err != nil {
				if isConstraint(err) {
					// Written on another server since the check above.
					return tokenward.Errorf(tokenward.ECONFLICT, "archived secrets of %s/%s were written again since; cannot restore over them", project, env)
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, dbError("restore environment", err)
	}
	return n, nil
}

func scanArchive(r rowScanner) (*monitor.Archive, error) {
	a := &monitor.Archive{}
	return a, r.Scan(&a.Project, &a.Env, &a.Secrets, sqlrow.TimeCol(&a.ArchivedAt), &a.ArchivedBy, sqlrow.TimeCol(&a.PurgeAt))
}

// PruneTokens implements core.MonitorStore.
func (db *DB) PruneTokens(ctx context.Context, before time.Time, limit int) ([]string, error) {
	var ids []string
	err := db.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, dollars(sqlrow.PruneTokensSQL), before.UnixNano(), before.UnixNano(), limit)
		if err != nil {
			return err
		}
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(ids) == 0 {
			return err
		}
		for _, q := range []string{sqlrow.PrunedStaleNoticesSQL, sqlrow.PrunedConsoleSessionsSQL} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, dbError("prune tokens", err)
	}
	return ids, nil
}

// ActiveTokens implements core.MonitorStore.
func (db *DB) ActiveTokens(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, dollars(sqlrow.ActiveTokensSQL), now.UnixNano()).Scan(&n)
	return n, dbError("active tokens", err)
}

// Archives lists the archived environments, oldest first.
func (db *DB) Archives(ctx context.Context) ([]*monitor.Archive, error) {
	out, err := queryAll(ctx, db.pool, scanArchive, `SELECT `+archiveCols+` FROM archived_envs ORDER BY archived_at, project, env`)
	return out, dbError("archives", err)
}

// PurgeArchive deletes project/env's archive if its purge time is at or
// before now (its ciphertexts with it: the archived rows cascade) and
// returns it; nil when it is not due or not there. One statement: of
// servers purging at once, the one that deleted it returns it.
func (db *DB) PurgeArchive(ctx context.Context, project, env string, now time.Time) (*monitor.Archive, error) {
	out, err := queryAll(ctx, db.pool, scanArchive, `DELETE FROM archived_envs WHERE project = $1 AND env = $2 AND purge_at <= $3 RETURNING `+archiveCols,
		project, env, now.UnixNano())
	if err != nil || len(out) == 0 {
		return nil, dbError("purge archive", err)
	}
	return out[0], nil
}
