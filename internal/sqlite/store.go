package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

var _ tokenward.Store = (*DB)(nil)

func (db *DB) Keyring(ctx context.Context) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, `SELECT sealed FROM keyring WHERE id = 1`).Scan(&b)
	return found(b, err, "no keyring: the data directory is not initialised")
}

func (db *DB) InitKeyring(ctx context.Context, sealed []byte) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO keyring (id, sealed) VALUES (1, ?)`, sealed)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "keyring exists already")
	}
	return err
}

func (db *DB) RotateKeyring(ctx context.Context, from, to []byte, keys []*tokenward.DataKey) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		// Only the keyring the rotation started from is replaced: two
		// rotations from one keyring would each name their new master key
		// by the same id, and a data key wrapped under the loser's would
		// never open again.
		res, err := tx.ExecContext(ctx, `UPDATE keyring SET sealed = ? WHERE id = 1 AND sealed = ?`, to, from)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return tokenward.Errorf(tokenward.ECONFLICT, "the keyring changed during key rotation (another rotation?); try again")
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM data_keys`).Scan(&n); err != nil {
			return err
		}
		if n != len(keys) {
			return tokenward.Errorf(tokenward.ECONFLICT, "data keys changed during key rotation; try again")
		}
		for _, k := range keys {
			res, err := tx.ExecContext(ctx, `UPDATE data_keys SET wrapped = ? WHERE project = ? AND version = ?`, k.Wrapped, k.Project, k.Version)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return tokenward.Errorf(tokenward.ECONFLICT, "data key %s/%d vanished during key rotation", k.Project, k.Version)
			}
		}
		return nil
	})
}

func (db *DB) CreateProject(ctx context.Context, p *tokenward.Project, key *tokenward.DataKey) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		at := p.CreatedAt.UnixNano()
		if _, err := tx.ExecContext(ctx, `INSERT INTO projects (name, created_at) VALUES (?, ?)`, p.Name, at); err != nil {
			if isConstraint(err) {
				return tokenward.Errorf(tokenward.ECONFLICT, "project %s exists already", p.Name)
			}
			return err
		}
		for _, env := range p.Envs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO environments (project, name, created_at) VALUES (?, ?, ?)`, p.Name, env, at); err != nil {
				if isConstraint(err) {
					return tokenward.Errorf(tokenward.EINVALID, "environment %s listed twice", env)
				}
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO data_keys (project, version, wrapped) VALUES (?, ?, ?)`, key.Project, key.Version, key.Wrapped)
		return err
	})
}

func (db *DB) Project(ctx context.Context, name string) (*tokenward.Project, error) {
	ps, err := db.projects(ctx, `WHERE p.name = ?`, name)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, notFound("project %s not found", name)
	}
	return ps[0], nil
}

func (db *DB) Projects(ctx context.Context) ([]*tokenward.Project, error) {
	return db.projects(ctx, ``)
}

// projects reads the projects where picks, each with its environments.
func (db *DB) projects(ctx context.Context, where string, args ...any) ([]*tokenward.Project, error) {
	var out []*tokenward.Project
	err := queryEach(ctx, db.read, func(r rowScanner) error {
		var p tokenward.Project
		var env sql.NullString
		if err := r.Scan(&p.Name, sqlrow.TimeCol(&p.CreatedAt), &env); err != nil {
			return err
		}
		if len(out) == 0 || out[len(out)-1].Name != p.Name {
			p.Envs = []string{}
			out = append(out, &p)
		}
		if env.Valid {
			last := out[len(out)-1]
			last.Envs = append(last.Envs, env.String)
		}
		return nil
	}, `SELECT p.name, p.created_at, e.name FROM projects p LEFT JOIN environments e ON e.project = p.name `+where+` ORDER BY p.name, e.name`, args...)
	return out, err
}

func (db *DB) CreateEnv(ctx context.Context, project, env string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO environments (project, name, created_at) VALUES (?, ?, ?)`, project, env, at.UnixNano())
	switch {
	case isConstraint(err):
		return tokenward.Errorf(tokenward.ECONFLICT, "environment %s/%s exists already", project, env)
	case isForeignKey(err):
		return notFound("project %s not found", project)
	}
	return err
}

func (db *DB) DataKeys(ctx context.Context) ([]*tokenward.DataKey, error) {
	return queryAll(ctx, db.read, sqlrow.ScanDataKey, `SELECT project, version, wrapped FROM data_keys ORDER BY project, version`)
}

func (db *DB) DataKey(ctx context.Context, project string, version int) (*tokenward.DataKey, error) {
	k, err := sqlrow.ScanDataKey(db.read.QueryRowContext(ctx, `SELECT project, version, wrapped FROM data_keys WHERE project = ? AND version = ?`, project, version))
	return found(k, err, "data key %s/%d not found", project, version)
}

func (db *DB) envExists(ctx context.Context, q queryer, project, env string) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM environments WHERE project = ? AND name = ?`, project, env).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		var p int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM projects WHERE name = ?`, project).Scan(&p); err != nil {
			return err
		}
		if p == 0 {
			return notFound("project %s not found", project)
		}
		return notFound("environment %s/%s not found", project, env)
	}
	return nil
}

func (db *DB) PutSecret(ctx context.Context, meta *tokenward.Secret, prev int, v *tokenward.SecretVersion) error {
	if v.Version <= prev {
		return tokenward.Errorf(tokenward.EINVALID, "new version must be above %d", prev)
	}
	tags, err := sqlrow.JSONText(nonNil(meta.Tags))
	if err != nil {
		return err
	}
	return db.putGroup(ctx, &putReq{meta: meta, prev: prev, v: v, tags: tags})
}

// putSecret is one secret write inside tx.
func (db *DB) putSecret(ctx context.Context, tx *sql.Tx, r *putReq) error {
	meta, prev, v := r.meta, r.prev, r.v
	var cur int
	err := tx.QueryRowContext(ctx, `SELECT version FROM secrets WHERE project = ? AND env = ? AND name = ?`, meta.Project, meta.Env, meta.Name).Scan(&cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if prev != 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "secret %s does not exist (expected version %d)", meta.Path(), prev)
		}
		if v.Version != 1 {
			return tokenward.Errorf(tokenward.EINVALID, "a new secret starts at version 1")
		}
		if err := db.envExists(ctx, tx, meta.Project, meta.Env); err != nil {
			return err
		}
		taken, err := holds(ctx, tx, sqlrow.SourceAtPathSQL, meta.Project, meta.Env, meta.Name)
		if err != nil {
			return err
		}
		if taken {
			return tokenward.SecretAtSourcePath(meta.Project, meta.Env, meta.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (project, env, name, owner, description, tags, expires_at, version, created_at, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			meta.Project, meta.Env, meta.Name, meta.Owner, meta.Description, r.tags, sqlrow.TimeArg(meta.ExpiresAt), v.Version, v.CreatedAt.UnixNano(), v.CreatedAt.UnixNano(), v.CreatedBy); err != nil {
			return err
		}
	case err != nil:
		return err
	case cur != prev:
		return tokenward.VersionConflict(meta.Path(), cur, prev)
	default:
		// A rotation's PENDING version (or one rolled back) may hold the
		// numbers above CURRENT: the new version goes above them all.
		var latest int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM secret_versions WHERE project = ? AND env = ? AND name = ?`, meta.Project, meta.Env, meta.Name).Scan(&latest); err != nil {
			return err
		}
		if v.Version != latest+1 {
			return tokenward.Errorf(tokenward.ECONFLICT, "secret %s: version %d is taken; the next is %d", meta.Path(), v.Version, latest+1)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE secrets SET owner = ?, description = ?, tags = ?, expires_at = ?, version = ?, updated_at = ?, updated_by = ? WHERE project = ? AND env = ? AND name = ?`,
			meta.Owner, meta.Description, r.tags, sqlrow.TimeArg(meta.ExpiresAt), v.Version, v.CreatedAt.UnixNano(), v.CreatedBy, meta.Project, meta.Env, meta.Name); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO secret_versions (project, env, name, version, ciphertext, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		meta.Project, meta.Env, meta.Name, v.Version, v.Ciphertext, v.CreatedAt.UnixNano(), v.CreatedBy)
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (db *DB) Secret(ctx context.Context, project, env, name string) (*tokenward.Secret, error) {
	s, err := sqlrow.ScanSecret(db.stmtSecret.QueryRowContext(ctx, project, env, name))
	return found(s, err, "secret %s/%s/%s not found", project, env, name)
}

func (db *DB) SecretVersion(ctx context.Context, project, env, name string, version int) (*tokenward.SecretVersion, error) {
	v := &tokenward.SecretVersion{Version: version}
	err := db.stmtSecretVersion.QueryRowContext(ctx, project, env, name, version).Scan(&v.Ciphertext, sqlrow.TimeCol(&v.CreatedAt), &v.CreatedBy)
	return found(v, err, "secret %s/%s/%s has no version %d", project, env, name, version)
}

func (db *DB) currentSecret(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	s, v, err := sqlrow.ScanCurrent(db.stmtCurrentVersion.QueryRowContext(ctx, project, env, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, notFound("secret %s/%s/%s not found", project, env, name)
	}
	return s, v, err
}

func (db *DB) secrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	if err := db.envExists(ctx, db.read, project, env); err != nil {
		return nil, err
	}
	return db.querySecrets(ctx, `WHERE project = ? AND env = ? ORDER BY name`, project, env)
}

// querySecrets reads the secrets where picks.
func (db *DB) querySecrets(ctx context.Context, where string, args ...any) ([]*tokenward.Secret, error) {
	return queryAll(ctx, db.read, func(r rowScanner) (*tokenward.Secret, error) { return sqlrow.ScanSecret(r) },
		`SELECT `+sqlrow.SecretCols+` FROM secrets `+where, args...)
}

func (db *DB) envSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	if err := db.envExists(ctx, db.read, project, env); err != nil {
		return nil, nil, err
	}
	var secrets []*tokenward.Secret
	var versions []*tokenward.SecretVersion
	err := queryEach(ctx, db.read, func(r rowScanner) error {
		s, v, err := sqlrow.ScanCurrent(r)
		if err != nil {
			return err
		}
		secrets, versions = append(secrets, s), append(versions, v)
		return nil
	}, `SELECT `+sqlrow.SecretColsS+`, v.ciphertext, v.created_at, v.created_by
		FROM secrets s JOIN secret_versions v ON v.project = s.project AND v.env = s.env AND v.name = s.name AND v.version = s.version
		WHERE s.project = ? AND s.env = ? ORDER BY s.name`, project, env)
	if err != nil {
		return nil, nil, err
	}
	return secrets, versions, nil
}

func (db *DB) SecretVersions(ctx context.Context, project, env, name string) ([]*tokenward.SecretVersion, error) {
	out, err := queryAll(ctx, db.read, func(r rowScanner) (*tokenward.SecretVersion, error) {
		v := &tokenward.SecretVersion{}
		return v, r.Scan(&v.Version, sqlrow.TimeCol(&v.CreatedAt), &v.CreatedBy)
	}, `SELECT version, created_at, created_by FROM secret_versions WHERE project = ? AND env = ? AND name = ? ORDER BY version`, project, env, name)
	if err == nil && len(out) == 0 {
		return nil, notFound("secret %s/%s/%s not found", project, env, name)
	}
	return out, err
}

func (db *DB) CreateToken(ctx context.Context, t *tokenward.Token, hash [32]byte) error {
	grants, err := sqlrow.JSONText(t.Grants)
	if err != nil {
		return err
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO tokens (id, hash, name, kind, owner, created_by, grants, ci, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, hash[:], t.Name, string(t.Kind), t.Owner, t.CreatedBy, grants, sqlrow.JSONObject(t.CI), t.CreatedAt.UnixNano(), sqlrow.TimeArg(t.ExpiresAt))
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "an active token named %s exists already", t.Name)
	}
	return err
}

func (db *DB) TokenByHash(ctx context.Context, hash [32]byte) (*tokenward.Token, error) {
	t, err := sqlrow.ScanToken(db.stmtTokenByHash.QueryRowContext(ctx, hash[:]))
	return found(t, err, "token not found")
}

func (db *DB) token(ctx context.Context, id string) (*tokenward.Token, error) {
	t, err := sqlrow.ScanToken(db.read.QueryRowContext(ctx, `SELECT `+sqlrow.TokenCols+` FROM tokens WHERE id = ?`, id))
	return found(t, err, "token %s not found", id)
}

func (db *DB) TokenByName(ctx context.Context, name string) (*tokenward.Token, error) {
	t, err := sqlrow.ScanToken(db.read.QueryRowContext(ctx, `SELECT `+sqlrow.TokenCols+` FROM tokens WHERE name = ? AND revoked_at IS NULL`, name))
	return found(t, err, "no active token named %s", name)
}

func (db *DB) Tokens(ctx context.Context) ([]*tokenward.Token, error) {
	return queryAll(ctx, db.read, sqlrow.ScanToken, `SELECT `+sqlrow.TokenCols+` FROM tokens ORDER BY created_at, id`)
}

func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, at.UnixNano(), id)
	return changedRow(res, err, "token %s not found", id)
}

func (db *DB) TouchTokens(ctx context.Context, uses []tokenward.TokenUse) error {
	if len(uses) == 0 {
		return nil
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?), last_used_ip = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, u := range uses {
			if _, err := stmt.ExecContext(ctx, u.At.UnixNano(), u.IP, u.ID); err != nil {
				return err
			}
		}
		return nil
	})
}
