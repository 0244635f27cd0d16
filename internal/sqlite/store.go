package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/tokenward/tokenward"
)

var _ tokenward.Store = (*DB)(nil)

func (db *DB) Keyring(ctx context.Context) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, `SELECT sealed FROM keyring WHERE id = 1`).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("no keyring: the data directory is not initialised")
	}
	return b, err
}

func (db *DB) InitKeyring(ctx context.Context, sealed []byte) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO keyring (id, sealed) VALUES (1, ?)`, sealed)
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "keyring exists already")
	}
	return err
}

func (db *DB) RotateKeyring(ctx context.Context, sealed []byte, keys []*tokenward.DataKey) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM data_keys`).Scan(&n); err != nil {
			return err
		}
		if n != len(keys) {
			return tokenward.Errorf(tokenward.ECONFLICT, "data keys changed during key rotation; try again")
		}
		res, err := tx.ExecContext(ctx, `UPDATE keyring SET sealed = ? WHERE id = 1`, sealed)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return notFound("no keyring")
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
	p := &tokenward.Project{Name: name, Envs: []string{}}
	var at int64
	err := db.read.QueryRowContext(ctx, `SELECT created_at FROM projects WHERE name = ?`, name).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("project %s not found", name)
	}
	if err != nil {
		return nil, err
	}
	p.CreatedAt = time.Unix(0, at).UTC()
	rows, err := db.read.QueryContext(ctx, `SELECT name FROM environments WHERE project = ? ORDER BY name`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var env string
		if err := rows.Scan(&env); err != nil {
			return nil, err
		}
		p.Envs = append(p.Envs, env)
	}
	return p, rows.Err()
}

func (db *DB) Projects(ctx context.Context) ([]*tokenward.Project, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT p.name, p.created_at, e.name FROM projects p LEFT JOIN environments e ON e.project = p.name ORDER BY p.name, e.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tokenward.Project
	for rows.Next() {
		var name string
		var at int64
		var env sql.NullString
		if err := rows.Scan(&name, &at, &env); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, &tokenward.Project{Name: name, Envs: []string{}, CreatedAt: time.Unix(0, at).UTC()})
		}
		if env.Valid {
			p := out[len(out)-1]
			p.Envs = append(p.Envs, env.String)
		}
	}
	return out, rows.Err()
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
	rows, err := db.read.QueryContext(ctx, `SELECT project, version, wrapped FROM data_keys ORDER BY project, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tokenward.DataKey
	for rows.Next() {
		k := &tokenward.DataKey{}
		if err := rows.Scan(&k.Project, &k.Version, &k.Wrapped); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (db *DB) DataKey(ctx context.Context, project string, version int) (*tokenward.DataKey, error) {
	k := &tokenward.DataKey{Project: project, Version: version}
	err := db.read.QueryRowContext(ctx, `SELECT wrapped FROM data_keys WHERE project = ? AND version = ?`, project, version).Scan(&k.Wrapped)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("data key %s/%d not found", project, version)
	}
	return k, err
}

func (db *DB) envExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, project, env string) error {
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
	tags, err := json.Marshal(nonNil(meta.Tags))
	if err != nil {
		return err
	}
	return db.putGroup(ctx, &putReq{meta: meta, prev: prev, v: v, tags: string(tags)})
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (project, env, name, owner, description, tags, expires_at, version, created_at, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			meta.Project, meta.Env, meta.Name, meta.Owner, meta.Description, r.tags, timeArg(meta.ExpiresAt), v.Version, v.CreatedAt.UnixNano(), v.CreatedAt.UnixNano(), v.CreatedBy); err != nil {
			return err
		}
	case err != nil:
		return err
	case cur != prev:
		return tokenward.Errorf(tokenward.ECONFLICT, "secret %s is at version %d, not %d", meta.Path(), cur, prev)
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
			meta.Owner, meta.Description, r.tags, timeArg(meta.ExpiresAt), v.Version, v.CreatedAt.UnixNano(), v.CreatedBy, meta.Project, meta.Env, meta.Name); err != nil {
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

const (
	secretCols  = `project, env, name, owner, description, tags, expires_at, version, created_at, updated_at, updated_by`
	secretColsS = `s.project, s.env, s.name, s.owner, s.description, s.tags, s.expires_at, s.version, s.created_at, s.updated_at, s.updated_by`
)

func scanSecret(sc interface{ Scan(...any) error }, extra ...any) (*tokenward.Secret, error) {
	s := &tokenward.Secret{}
	var tags string
	var exp sql.NullInt64
	var created, updated int64
	if err := sc.Scan(append([]any{&s.Project, &s.Env, &s.Name, &s.Owner, &s.Description, &tags, &exp, &s.Version, &created, &updated, &s.UpdatedBy}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
		return nil, err
	}
	if len(s.Tags) == 0 {
		s.Tags = nil
	}
	s.ExpiresAt = timeOf(exp)
	s.CreatedAt = time.Unix(0, created).UTC()
	s.UpdatedAt = time.Unix(0, updated).UTC()
	return s, nil
}

func (db *DB) Secret(ctx context.Context, project, env, name string) (*tokenward.Secret, error) {
	s, err := scanSecret(db.stmtSecret.QueryRowContext(ctx, project, env, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("secret %s/%s/%s not found", project, env, name)
	}
	return s, err
}

func (db *DB) SecretVersion(ctx context.Context, project, env, name string, version int) (*tokenward.SecretVersion, error) {
	v := &tokenward.SecretVersion{Version: version}
	var at int64
	err := db.stmtSecretVersion.QueryRowContext(ctx, project, env, name, version).Scan(&v.Ciphertext, &at, &v.CreatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("secret %s/%s/%s has no version %d", project, env, name, version)
	}
	v.CreatedAt = time.Unix(0, at).UTC()
	return v, err
}

func (db *DB) currentSecret(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	v := &tokenward.SecretVersion{}
	var at int64
	s, err := scanSecret(db.stmtCurrentVersion.QueryRowContext(ctx, project, env, name), &v.Ciphertext, &at, &v.CreatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, notFound("secret %s/%s/%s not found", project, env, name)
	}
	if err != nil {
		return nil, nil, err
	}
	v.Version, v.CreatedAt = s.Version, time.Unix(0, at).UTC()
	return s, v, nil
}

func (db *DB) secrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	if err := db.envExists(ctx, db.read, project, env); err != nil {
		return nil, err
	}
	return db.querySecrets(ctx, `SELECT `+secretCols+` FROM secrets WHERE project = ? AND env = ? ORDER BY name`, project, env)
}

// querySecrets runs a query of secretCols and scans every row.
func (db *DB) querySecrets(ctx context.Context, query string, args ...any) ([]*tokenward.Secret, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tokenward.Secret
	for rows.Next() {
		s, err := scanSecret(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (db *DB) envSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	if err := db.envExists(ctx, db.read, project, env); err != nil {
		return nil, nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT s.project, s.env, s.name, s.owner, s.description, s.tags, s.expires_at, s.version, s.created_at, s.updated_at, s.updated_by,
		v.ciphertext, v.created_at, v.created_by
		FROM secrets s JOIN secret_versions v ON v.project = s.project AND v.env = s.env AND v.name = s.name AND v.version = s.version
		WHERE s.project = ? AND s.env = ? ORDER BY s.name`, project, env)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var secrets []*tokenward.Secret
	var versions []*tokenward.SecretVersion
	for rows.Next() {
		s := &tokenward.Secret{}
		v := &tokenward.SecretVersion{}
		var tags string
		var exp sql.NullInt64
		var created, updated, vat int64
		if err := rows.Scan(&s.Project, &s.Env, &s.Name, &s.Owner, &s.Description, &tags, &exp, &s.Version, &created, &updated, &s.UpdatedBy,
			&v.Ciphertext, &vat, &v.CreatedBy); err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
			return nil, nil, err
		}
		if len(s.Tags) == 0 {
			s.Tags = nil
		}
		s.ExpiresAt = timeOf(exp)
		s.CreatedAt, s.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		v.Version, v.CreatedAt = s.Version, time.Unix(0, vat).UTC()
		secrets = append(secrets, s)
		versions = append(versions, v)
	}
	return secrets, versions, rows.Err()
}

func (db *DB) SecretVersions(ctx context.Context, project, env, name string) ([]*tokenward.SecretVersion, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT version, created_at, created_by FROM secret_versions WHERE project = ? AND env = ? AND name = ? ORDER BY version`, project, env, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tokenward.SecretVersion
	for rows.Next() {
		v := &tokenward.SecretVersion{}
		var at int64
		if err := rows.Scan(&v.Version, &at, &v.CreatedBy); err != nil {
			return nil, err
		}
		v.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, notFound("secret %s/%s/%s not found", project, env, name)
	}
	return out, nil
}

const tokenCols = `id, name, kind, owner, created_by, grants, ci, created_at, expires_at, revoked_at, last_used_at, last_used_ip`

func scanToken(sc interface{ Scan(...any) error }) (*tokenward.Token, error) {
	t := &tokenward.Token{}
	var grants, ci string
	var created int64
	var exp, rev, used sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Name, &t.Kind, &t.Owner, &t.CreatedBy, &grants, &ci, &created, &exp, &rev, &used, &t.LastUsedIP); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(grants), &t.Grants); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(ci), &t.CI); err != nil {
		return nil, err
	}
	if len(t.CI) == 0 {
		t.CI = nil
	}
	t.CreatedAt = time.Unix(0, created).UTC()
	t.ExpiresAt, t.RevokedAt, t.LastUsedAt = timeOf(exp), timeOf(rev), timeOf(used)
	return t, nil
}

func (db *DB) CreateToken(ctx context.Context, t *tokenward.Token, hash [32]byte) error {
	grants, err := json.Marshal(t.Grants)
	if err != nil {
		return err
	}
	ci := []byte("{}")
	if len(t.CI) > 0 {
		if ci, err = json.Marshal(t.CI); err != nil {
			return err
		}
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO tokens (id, hash, name, kind, owner, created_by, grants, ci, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, hash[:], t.Name, string(t.Kind), t.Owner, t.CreatedBy, string(grants), string(ci), t.CreatedAt.UnixNano(), timeArg(t.ExpiresAt))
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "an active token named %s exists already", t.Name)
	}
	return err
}

func (db *DB) TokenByHash(ctx context.Context, hash [32]byte) (*tokenward.Token, error) {
	t, err := scanToken(db.stmtTokenByHash.QueryRowContext(ctx, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("token not found")
	}
	return t, err
}

func (db *DB) token(ctx context.Context, id string) (*tokenward.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("token %s not found", id)
	}
	return t, err
}

func (db *DB) TokenByName(ctx context.Context, name string) (*tokenward.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE name = ? AND revoked_at IS NULL`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("no active token named %s", name)
	}
	return t, err
}

func (db *DB) Tokens(ctx context.Context) ([]*tokenward.Token, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tokenward.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, at.UnixNano(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("token %s not found", id)
	}
	return nil
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
