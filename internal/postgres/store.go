package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

var _ tokenward.Store = (*DB)(nil)

// Unlike internal/sqlite, this store has no group commit of secret writes:
// PostgreSQL takes concurrent writers itself. Writers on several servers
// are kept apart by row locks (SELECT … FOR UPDATE) and unique
// constraints, whose violations are ECONFLICT. The hottest reads go
// through the read cache (internal/readcache, embedded in DB) on the
// change clock (notify.go).

func (db *DB) Keyring(ctx context.Context) ([]byte, error) {
	var b []byte
	err := db.pool.QueryRow(ctx, `SELECT sealed FROM keyring WHERE id = 1`).Scan(&b)
	return found(b, err, "no keyring: the data directory is not initialised")
}

func (db *DB) InitKeyring(ctx context.Context, sealed []byte) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO keyring (id, sealed) VALUES (1, $1)`, sealed)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "keyring exists already")
	}
	return dbError("write", err)
}

func (db *DB) RotateKeyring(ctx context.Context, from, to []byte, keys []*tokenward.DataKey) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		// No data key may be added (by another server) between the count
		// and the commit: the rotation would not rewrap it. The lock also
		// puts rotations from several servers one after the other.
		if _, err := tx.Exec(ctx, `LOCK TABLE data_keys IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		// Only the keyring the rotation started from is replaced: two
		// rotations from one keyring would each name their new master key
		// by the same id, and a data key wrapped under the loser's would
		// never open again.
		tag, err := tx.Exec(ctx, `UPDATE keyring SET sealed = $1 WHERE id = 1 AND sealed = $2`, to, from)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return tokenward.Errorf(tokenward.ECONFLICT, "the keyring changed during key rotation (another rotation?); try again")
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM data_keys`).Scan(&n); err != nil {
			return err
		}
		if n != len(keys) {
			return tokenward.Errorf(tokenward.ECONFLICT, "data keys changed during key rotation; try again")
		}
		for _, k := range keys {
			tag, err := tx.Exec(ctx, `UPDATE data_keys SET wrapped = $1 WHERE project = $2 AND version = $3`, k.Wrapped, k.Project, k.Version)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return tokenward.Errorf(tokenward.ECONFLICT, "data key %s/%d vanished during key rotation", k.Project, k.Version)
			}
		}
		return nil
	})
}

func (db *DB) CreateProject(ctx context.Context, p *tokenward.Project, key *tokenward.DataKey) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		at := p.CreatedAt.UnixNano()
		if _, err := tx.Exec(ctx, `INSERT INTO projects (name, created_at) VALUES ($1, $2)`, p.Name, at); err != nil {
			if isConstraint(err) {
				return tokenward.Errorf(tokenward.ECONFLICT, "project %s exists already", p.Name)
			}
			return err
		}
		for _, env := range p.Envs {
			if _, err := tx.Exec(ctx, `INSERT INTO environments (project, name, created_at) VALUES ($1, $2, $3)`, p.Name, env, at); err != nil {
				if isConstraint(err) {
					return tokenward.Errorf(tokenward.EINVALID, "environment %s listed twice", env)
				}
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO data_keys (project, version, wrapped) VALUES ($1, $2, $3)`, key.Project, key.Version, key.Wrapped)
		return err
	})
}

func (db *DB) Project(ctx context.Context, name string) (*tokenward.Project, error) {
	ps, err := db.projects(ctx, `WHERE p.name = $1`, name)
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
	err := queryEach(ctx, db.pool, func(r rowScanner) error {
		var p tokenward.Project
		var env *string
		if err := r.Scan(&p.Name, sqlrow.TimeCol(&p.CreatedAt), &env); err != nil {
			return err
		}
		if len(out) == 0 || out[len(out)-1].Name != p.Name {
			p.Envs = []string{}
			out = append(out, &p)
		}
		if env != nil {
			last := out[len(out)-1]
			last.Envs = append(last.Envs, *env)
		}
		return nil
	}, `SELECT p.name, p.created_at, e.name FROM projects p LEFT JOIN environments e ON e.project = p.name `+where+` ORDER BY p.name, e.name`, args...)
	return out, err
}

func (db *DB) CreateEnv(ctx context.Context, project, env string, at time.Time) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO environments (project, name, created_at) VALUES ($1, $2, $3)`, project, env, at.UnixNano())
	switch {
	case isConstraint(err):
		return tokenward.Errorf(tokenward.ECONFLICT, "environment %s/%s exists already", project, env)
	case isForeignKey(err):
		return notFound("project %s not found", project)
	}
	return dbError("write", err)
}

func (db *DB) DataKeys(ctx context.Context) ([]*tokenward.DataKey, error) {
	return queryAll(ctx, db.pool, sqlrow.ScanDataKey, `SELECT project, version, wrapped FROM data_keys ORDER BY project, version`)
}

func (db *DB) DataKey(ctx context.Context, project string, version int) (*tokenward.DataKey, error) {
	k, err := sqlrow.ScanDataKey(db.pool.QueryRow(ctx, `SELECT project, version, wrapped FROM data_keys WHERE project = $1 AND version = $2`, project, version))
	return found(k, err, "data key %s/%d not found", project, version)
}

func envExists(ctx context.Context, q queryer, project, env string) error {
	var envs, projects int
	if err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM environments WHERE project = $1 AND name = $2), (SELECT count(*) FROM projects WHERE name = $1)`,
		project, env).Scan(&envs, &projects); err != nil {
		return dbError("query", err)
	}
	switch {
	case projects == 0:
		return notFound("project %s not found", project)
	case envs == 0:
		return notFound("environment %s/%s not found", project, env)
	}
	return nil
}

// lockSecret locks the secret's row until tx ends and returns its current
// version: writers of one secret on any server take turns from here. Each
// later statement of tx sees what they committed (READ COMMITTED).
func lockSecret(ctx context.Context, tx pgx.Tx, project, env, name string) (int, error) {
	var cur int
	err := tx.QueryRow(ctx, `SELECT version FROM secrets WHERE project = $1 AND env = $2 AND name = $3 FOR UPDATE`, project, env, name).Scan(&cur)
	return cur, err
}

func (db *DB) PutSecret(ctx context.Context, meta *tokenward.Secret, prev int, v *tokenward.SecretVersion) error {
	if v.Version <= prev {
		return tokenward.Errorf(tokenward.EINVALID, "new version must be above %d", prev)
	}
	tags, err := sqlrow.JSONText(nonNil(meta.Tags))
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(tx pgx.Tx) error { return putSecret(ctx, tx, meta, prev, v, tags) })
	if isConstraint(err) { // a writer on another connection created it first
		return tokenward.Errorf(tokenward.ECONFLICT, "secret %s: version %d was written by another writer", meta.Path(), v.Version)
	}
	return dbError("write", err)
}

func putSecret(ctx context.Context, tx pgx.Tx, meta *tokenward.Secret, prev int, v *tokenward.SecretVersion, tags string) error {
	cur, err := lockSecret(ctx, tx, meta.Project, meta.Env, meta.Name)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if prev != 0 {
			return tokenward.Errorf(tokenward.ECONFLICT, "secret %s does not exist (expected version %d)", meta.Path(), prev)
		}
		if v.Version != 1 {
			return tokenward.Errorf(tokenward.EINVALID, "a new secret starts at version 1")
		}
		if err := envExists(ctx, tx, meta.Project, meta.Env); err != nil {
			return err
		}
		taken, err := claimPath(ctx, tx, sqlrow.SourceAtPathSQL, meta.Project, meta.Env, meta.Name)
		if err != nil {
			return err
		}
		if taken {
			return tokenward.SecretAtSourcePath(meta.Project, meta.Env, meta.Name)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO secrets (`+sqlrow.SecretCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			meta.Project, meta.Env, meta.Name, meta.Owner, meta.Description, tags, sqlrow.TimeArg(meta.ExpiresAt), v.Version, v.CreatedAt.UnixNano(), v.CreatedAt.UnixNano(), v.CreatedBy); err != nil {
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
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM secret_versions WHERE project = $1 AND env = $2 AND name = $3`, meta.Project, meta.Env, meta.Name).Scan(&latest); err != nil {
			return err
		}
		if v.Version != latest+1 {
			return tokenward.Errorf(tokenward.ECONFLICT, "secret %s: version %d is taken; the next is %d", meta.Path(), v.Version, latest+1)
		}
		if _, err := tx.Exec(ctx, `UPDATE secrets SET owner = $1, description = $2, tags = $3, expires_at = $4, version = $5, updated_at = $6, updated_by = $7 WHERE project = $8 AND env = $9 AND name = $10`,
			meta.Owner, meta.Description, tags, sqlrow.TimeArg(meta.ExpiresAt), v.Version, v.CreatedAt.UnixNano(), v.CreatedBy, meta.Project, meta.Env, meta.Name); err != nil {
			return err
		}
	}
	return insertVersion(ctx, tx, meta.Project, meta.Env, meta.Name, v)
}

func insertVersion(ctx context.Context, tx pgx.Tx, project, env, name string, v *tokenward.SecretVersion) error {
	_, err := tx.Exec(ctx, `INSERT INTO secret_versions (project, env, name, version, ciphertext, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		project, env, name, v.Version, v.Ciphertext, v.CreatedAt.UnixNano(), v.CreatedBy)
	return dbError("write", err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const (
	// currentJoin reads sqlrow.SecretColsS and the current version's ciphertext,
	// created_at and created_by (sqlrow.ScanCurrent).
	currentJoin = `SELECT ` + sqlrow.SecretColsS + `, v.ciphertext, v.created_at, v.created_by
		FROM secrets s JOIN secret_versions v ON v.project = s.project AND v.env = s.env AND v.name = s.name AND v.version = s.version `
)

func (db *DB) Secret(ctx context.Context, project, env, name string) (*tokenward.Secret, error) {
	s, err := sqlrow.ScanSecret(db.pool.QueryRow(ctx, `SELECT `+sqlrow.SecretCols+` FROM secrets WHERE project = $1 AND env = $2 AND name = $3`, project, env, name))
	return found(s, err, "secret %s/%s/%s not found", project, env, name)
}

func (db *DB) SecretVersion(ctx context.Context, project, env, name string, version int) (*tokenward.SecretVersion, error) {
	v := &tokenward.SecretVersion{Version: version}
	err := db.pool.QueryRow(ctx, `SELECT ciphertext, created_at, created_by FROM secret_versions WHERE project = $1 AND env = $2 AND name = $3 AND version = $4`,
		project, env, name, version).Scan(&v.Ciphertext, sqlrow.TimeCol(&v.CreatedAt), &v.CreatedBy)
	return found(v, err, "secret %s/%s/%s has no version %d", project, env, name, version)
}

func (db *DB) currentSecret(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	s, v, err := sqlrow.ScanCurrent(db.pool.QueryRow(ctx, currentJoin+`WHERE s.project = $1 AND s.env = $2 AND s.name = $3`, project, env, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, notFound("secret %s/%s/%s not found", project, env, name)
	}
	return s, v, dbError("query", err)
}

func (db *DB) secrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	if err := envExists(ctx, db.pool, project, env); err != nil {
		return nil, err
	}
	return db.querySecrets(ctx, `WHERE project = $1 AND env = $2 ORDER BY name`, project, env)
}

// querySecrets reads the secrets where picks.
func (db *DB) querySecrets(ctx context.Context, where string, args ...any) ([]*tokenward.Secret, error) {
	return queryAll(ctx, db.pool, func(r rowScanner) (*tokenward.Secret, error) { return sqlrow.ScanSecret(r) },
		`SELECT `+sqlrow.SecretCols+` FROM secrets `+where, args...)
}

func (db *DB) envSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	if err := envExists(ctx, db.pool, project, env); err != nil {
		return nil, nil, err
	}
	var secrets []*tokenward.Secret
	var versions []*tokenward.SecretVersion
	err := queryEach(ctx, db.pool, func(r rowScanner) error {
		s, v, err := sqlrow.ScanCurrent(r)
		if err != nil {
			return err
		}
		secrets, versions = append(secrets, s), append(versions, v)
		return nil
	}, currentJoin+`WHERE s.project = $1 AND s.env = $2 ORDER BY s.name`, project, env)
	if err != nil {
		return nil, nil, err
	}
	return secrets, versions, nil
}

func (db *DB) SecretVersions(ctx context.Context, project, env, name string) ([]*tokenward.SecretVersion, error) {
	out, err := queryAll(ctx, db.pool, func(r rowScanner) (*tokenward.SecretVersion, error) {
		v := &tokenward.SecretVersion{}
		return v, r.Scan(&v.Version, sqlrow.TimeCol(&v.CreatedAt), &v.CreatedBy)
	}, `SELECT version, created_at, created_by FROM secret_versions WHERE project = $1 AND env = $2 AND name = $3 ORDER BY version`, project, env, name)
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
	_, err = db.pool.Exec(ctx, `INSERT INTO tokens (id, hash, name, kind, owner, created_by, grants, ci, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		t.ID, hash[:], t.Name, string(t.Kind), t.Owner, t.CreatedBy, grants, sqlrow.JSONObject(t.CI), t.CreatedAt.UnixNano(), sqlrow.TimeArg(t.ExpiresAt))
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "an active token named %s exists already", t.Name)
	}
	return dbError("write", err)
}

func (db *DB) TokenByHash(ctx context.Context, hash [32]byte) (*tokenward.Token, error) {
	t, err := sqlrow.ScanToken(db.pool.QueryRow(ctx, `SELECT `+sqlrow.TokenCols+` FROM tokens WHERE hash = $1`, hash[:]))
	return found(t, err, "token not found")
}

func (db *DB) token(ctx context.Context, id string) (*tokenward.Token, error) {
	t, err := sqlrow.ScanToken(db.pool.QueryRow(ctx, `SELECT `+sqlrow.TokenCols+` FROM tokens WHERE id = $1`, id))
	return found(t, err, "token %s not found", id)
}

func (db *DB) TokenByName(ctx context.Context, name string) (*tokenward.Token, error) {
	t, err := sqlrow.ScanToken(db.pool.QueryRow(ctx, `SELECT `+sqlrow.TokenCols+` FROM tokens WHERE name = $1 AND revoked_at IS NULL`, name))
	return found(t, err, "no active token named %s", name)
}

func (db *DB) Tokens(ctx context.Context) ([]*tokenward.Token, error) {
	return queryAll(ctx, db.pool, sqlrow.ScanToken, `SELECT `+sqlrow.TokenCols+` FROM tokens ORDER BY created_at, id`)
}

func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, at.UnixNano(), id)
	return changedRow(tag, err, "token %s not found", id)
}

func (db *DB) TouchTokens(ctx context.Context, uses []tokenward.TokenUse) error {
	if len(uses) == 0 {
		return nil
	}
	// Every server touches rows in the same (id) order, so two batches
	// never wait on each other's locks in a cycle; a stable sort keeps
	// one token's uses in the order given.
	uses = slices.Clone(uses)
	slices.SortStableFunc(uses, func(a, b tokenward.TokenUse) int { return cmp.Compare(a.ID, b.ID) })
	return db.tx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, u := range uses {
			b.Queue(`UPDATE tokens SET last_used_at = greatest(coalesce(last_used_at, 0), $1), last_used_ip = $2 WHERE id = $3`, u.At.UnixNano(), u.IP, u.ID)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}
