package core

import (
	"context"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/seal"
)

// PutSecretInput is a write of a new secret version. Nil metadata fields
// keep what the secret has.
type PutSecretInput struct {
	Project, Env, Name string
	Value              []byte
	Owner              *string
	Description        *string
	Tags               *[]string
	ExpiresAt          *time.Time // zero time clears it
	// IfVersion, when set, makes the write fail with ECONFLICT unless the
	// secret is at that version (0: it must not exist yet).
	IfVersion *int
}

func validEnv(project, env string) error {
	if err := tokenward.ValidateProjectName(project); err != nil {
		return err
	}
	return tokenward.ValidateEnvName(env)
}

func validPath(project, env, name string) error {
	if err := validEnv(project, env); err != nil {
		return err
	}
	return tokenward.ValidateSecretName(name)
}

// PutSecret writes a new version of a secret, creating it if needed.
func (c *Core) PutSecret(ctx context.Context, tok *tokenward.Token, in PutSecretInput) (*tokenward.Secret, error) {
	if err := validPath(in.Project, in.Env, in.Name); err != nil {
		return nil, err
	}
	if err := require(tok, tokenward.ActionWrite, in.Project, in.Env, in.Name); err != nil {
		return nil, err
	}
	if len(in.Value) == 0 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "value is empty")
	}
	if len(in.Value) > c.MaxValueSize {
		return nil, tokenward.Errorf(tokenward.ETOOLARGE, "value is %d bytes; the limit is %d", len(in.Value), c.MaxValueSize)
	}
	if in.ExpiresAt != nil && !storable(*in.ExpiresAt) {
		return nil, tokenward.Errorf(tokenward.EINVALID, "expires_at must lie between %s and %s", tokenward.MinTime.Format(time.RFC3339), tokenward.MaxTime.Format(time.RFC3339))
	}
	if err := c.RefuseRetired(ctx, in.Project, in.Env); err != nil {
		return nil, err
	}
	// Writers that lose a race on the version number retry, unless the
	// caller asked for a specific version.
	for attempt := 0; ; attempt++ {
		cur, err := c.Store.Secret(ctx, in.Project, in.Env, in.Name)
		if err != nil && tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
			return nil, err
		}
		meta := &tokenward.Secret{Project: in.Project, Env: in.Env, Name: in.Name}
		prev := 0
		if cur != nil {
			*meta = *cur
			prev = cur.Version
		}
		if in.IfVersion != nil && *in.IfVersion != prev {
			return nil, tokenward.VersionConflict(meta.Path(), prev, *in.IfVersion)
		}
		applyMeta(meta, in)
		if err := tokenward.ValidateSecretMeta(meta); err != nil {
			return nil, err
		}
		now := c.Now().UTC()
		next := prev + 1
		if attempt > 0 {
			// A rotation's version may hold prev+1 (see tokenward.LabelStore).
			if next, err = c.nextVersion(ctx, in.Project, in.Env, in.Name, prev); err != nil {
				return nil, err
			}
		}
		ct, err := c.sealValue(ctx, in.Project, in.Env, in.Name, next, in.Value)
		if err != nil {
			return nil, err
		}
		err = c.Store.PutSecret(ctx, meta, prev, &tokenward.SecretVersion{Version: next, CreatedAt: now, CreatedBy: tok.ID, Ciphertext: ct})
		// A creation that conflicts twice found no secret either time:
		// the path is a dynamic source's (tokenward.SecretAtSourcePath),
		// and no retry changes that.
		retry := in.IfVersion == nil || attempt == 0
		if cur == nil && attempt > 0 {
			retry = false
		}
		if tokenward.ErrorCode(err) == tokenward.ECONFLICT && retry && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		meta.Version, meta.UpdatedAt, meta.UpdatedBy = next, now, tok.ID
		if prev == 0 {
			meta.CreatedAt = now
		}
		return meta, nil
	}
}

func applyMeta(meta *tokenward.Secret, in PutSecretInput) {
	if in.Owner != nil {
		meta.Owner = *in.Owner
	}
	if in.Description != nil {
		meta.Description = *in.Description
	}
	if in.Tags != nil {
		meta.Tags = *in.Tags
	}
	if in.ExpiresAt != nil {
		meta.ExpiresAt = in.ExpiresAt.UTC()
	}
}

// GetSecret returns a secret's metadata and the value of a version (0:
// the current one). The metadata may be the read cache's own record,
// shared with other callers: read it, never modify it.
func (c *Core) GetSecret(ctx context.Context, tok *tokenward.Token, project, env, name string, version int) (*tokenward.Secret, []byte, error) {
	if err := validPath(project, env, name); err != nil {
		return nil, nil, err
	}
	if err := require(tok, tokenward.ActionRead, project, env, name); err != nil {
		return nil, nil, err
	}
	if version < 0 {
		return nil, nil, tokenward.Errorf(tokenward.EINVALID, "version must be positive")
	}
	var meta *tokenward.Secret
	var v *tokenward.SecretVersion
	var err error
	if version == 0 {
		meta, v, err = c.currentSecretRO(ctx, project, env, name)
	} else if meta, err = c.Store.Secret(ctx, project, env, name); err == nil {
		v, err = c.Store.SecretVersion(ctx, project, env, name, version)
	}
	if err != nil {
		return nil, nil, err
	}
	value, err := c.openValue(ctx, project, env, name, v.Version, v.Ciphertext)
	if err != nil {
		return nil, nil, err
	}
	return meta, value, nil
}

// ListSecrets lists the secrets of project/env that tok may read, without
// values.
func (c *Core) ListSecrets(ctx context.Context, tok *tokenward.Token, project, env string) ([]*tokenward.Secret, error) {
	if err := requireAnyIn(tok, tokenward.ActionRead, project, env); err != nil {
		return nil, err
	}
	all, err := c.Store.Secrets(ctx, project, env)
	if err != nil {
		return nil, err
	}
	return filter(all, func(s *tokenward.Secret) bool { return tok.Grants.Allows(tokenward.ActionRead, project, env, s.Name) }), nil
}

// SecretHistory lists the versions of a secret.
func (c *Core) SecretHistory(ctx context.Context, tok *tokenward.Token, project, env, name string) ([]*tokenward.SecretVersion, error) {
	if err := validPath(project, env, name); err != nil {
		return nil, err
	}
	if err := require(tok, tokenward.ActionRead, project, env, name); err != nil {
		return nil, err
	}
	return c.Store.SecretVersions(ctx, project, env, name)
}

// RollbackSecret writes a new version holding the value of version to.
// Versions are immutable: a rollback adds, it never deletes.
func (c *Core) RollbackSecret(ctx context.Context, tok *tokenward.Token, project, env, name string, to int) (*tokenward.Secret, error) {
	if err := validPath(project, env, name); err != nil {
		return nil, err
	}
	if err := require(tok, tokenward.ActionWrite, project, env, name); err != nil {
		return nil, err
	}
	if to < 1 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "rollback needs a version of 1 or more")
	}
	meta, err := c.Store.Secret(ctx, project, env, name)
	if err != nil {
		return nil, err
	}
	v, err := c.Store.SecretVersion(ctx, project, env, name, to)
	if err != nil {
		return nil, err
	}
	value, err := c.openValue(ctx, project, env, name, to, v.Ciphertext)
	if err != nil {
		return nil, err
	}
	cur := meta.Version
	return c.PutSecret(ctx, tok, PutSecretInput{Project: project, Env: env, Name: name, Value: value, IfVersion: &cur})
}

// EnvValue is one secret of an environment with its current value.
type EnvValue struct {
	Secret *tokenward.Secret // may be shared with the store's read cache: do not modify
	Value  []byte
}

// EnvValues returns every secret of project/env that tok may read, with its
// current value, in one store read (for run and export).
func (c *Core) EnvValues(ctx context.Context, tok *tokenward.Token, project, env string) ([]EnvValue, error) {
	if err := requireAnyIn(tok, tokenward.ActionRead, project, env); err != nil {
		return nil, err
	}
	secrets, versions, err := c.envSecretsRO(ctx, project, env)
	if err != nil {
		return nil, err
	}
	out := make([]EnvValue, 0, len(secrets))
	every := tok.Grants.AllowsEveryName(tokenward.ActionRead, project, env)
	var key keyMemo
	size := 0
	for _, v := range versions {
		size += seal.PlaintextLen(v.Ciphertext)
	}
	key.buf = make([]byte, 0, size)
	for i, s := range secrets {
		if !every && !tok.Grants.Allows(tokenward.ActionRead, project, env, s.Name) {
			continue
		}
		value, err := c.openValueWith(ctx, &key, project, env, s.Name, versions[i].Version, versions[i].Ciphertext)
		if err != nil {
			clear(key.buf) // the values opened before it: nobody will wipe them
			return nil, err
		}
		out = append(out, EnvValue{Secret: s, Value: value})
	}
	return out, nil
}
