package core

import (
	"context"
	"slices"

	"github.com/tokenward/tokenward"
)

// SecretVersionsState is a secret's metadata with every version and the
// states of its deleted or destroyed ones (the Vault KV view).
type SecretVersionsState struct {
	Secret   *tokenward.Secret
	Versions []*tokenward.SecretVersion // oldest first, without ciphertexts
	States   map[int]tokenward.VersionState
}

// SecretVersionsState returns a secret's metadata, versions and version
// states; it needs read on the secret.
func (c *Core) SecretVersionsState(ctx context.Context, tok *tokenward.Token, project, env, name string) (*SecretVersionsState, error) {
	if err := validPath(project, env, name); err != nil {
		return nil, err
	}
	if err := require(tok, tokenward.ActionRead, project, env, name); err != nil {
		return nil, err
	}
	meta, err := c.Store.Secret(ctx, project, env, name)
	if err != nil {
		return nil, err
	}
	vs, err := c.Store.SecretVersions(ctx, project, env, name)
	if err != nil {
		return nil, err
	}
	states := map[int]tokenward.VersionState{}
	if ds, ok := c.Store.(tokenward.VersionDeleteStore); ok {
		if states, err = ds.VersionStates(ctx, project, env, name); err != nil {
			return nil, err
		}
	}
	return &SecretVersionsState{Secret: meta, Versions: vs, States: states}, nil
}

// VersionChange is a deletion, undeletion or destruction of versions.
type VersionChange int

// The changes.
const (
	DeleteVersions VersionChange = iota
	UndeleteVersions
	DestroyVersions
)

// ChangeVersions deletes, undeletes or destroys versions of a secret (none
// given: the current one). Deleting and undeleting need write on the
// secret, destroying (which erases the ciphertext for good) admin. The
// current version and a version a rotation's label points to cannot be
// destroyed: tokenward run and the rotation must always have their value.
// It returns the versions changed.
func (c *Core) ChangeVersions(ctx context.Context, tok *tokenward.Token, change VersionChange, project, env, name string, versions []int) ([]int, error) {
	if err := validPath(project, env, name); err != nil {
		return nil, err
	}
	action := tokenward.ActionWrite
	if change == DestroyVersions {
		action = tokenward.ActionAdmin
	}
	if err := require(tok, action, project, env, name); err != nil {
		return nil, err
	}
	ds, ok := c.Store.(tokenward.VersionDeleteStore)
	if !ok {
		return nil, tokenward.Errorf(tokenward.ENOTALLOWED, "this storage backend cannot delete versions")
	}
	if err := c.RefuseRetired(ctx, project, env); err != nil {
		return nil, err
	}
	meta, err := c.Store.Secret(ctx, project, env, name)
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		versions = []int{meta.Version}
	}
	versions = slices.Compact(slices.Sorted(slices.Values(versions)))
	if len(versions) > 0 && versions[0] < 1 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "versions must be 1 or more")
	}
	now := c.Now().UTC()
	switch change {
	case DeleteVersions:
		err = ds.DeleteVersions(ctx, project, env, name, versions, now)
	case UndeleteVersions:
		err = ds.UndeleteVersions(ctx, project, env, name, versions)
	case DestroyVersions:
		if err := c.refuseDestroy(ctx, meta, versions); err != nil {
			return nil, err
		}
		err = ds.DestroyVersions(ctx, project, env, name, versions, now)
	}
	if err != nil {
		return nil, err
	}
	return versions, nil
}

// refuseDestroy refuses to destroy the current version of s or one a
// rotation label points to.
func (c *Core) refuseDestroy(ctx context.Context, s *tokenward.Secret, versions []int) error {
	keep := []int{s.Version}
	if ls, ok := c.Store.(tokenward.LabelStore); ok {
		l, err := ls.SecretLabels(ctx, s.Project, s.Env, s.Name)
		if err != nil {
			return err
		}
		keep = append(keep, l.Pending, l.Previous)
	}
	for _, v := range versions {
		if slices.Contains(keep, v) {
			return tokenward.Errorf(tokenward.ECONFLICT, "version %d of %s is current or labelled by a rotation and cannot be destroyed: write a new version first", v, s.Path())
		}
	}
	return nil
}
