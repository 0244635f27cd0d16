package core

import (
	"context"
	"slices"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/seal"
)

// MaxEnvs bounds the environments of one project.
const MaxEnvs = 64

// CreateProject creates a project with its environments and data key.
func (c *Core) CreateProject(ctx context.Context, tok *tokenward.Token, name string, envs []string) (*tokenward.Project, error) {
	if err := tokenward.ValidateProjectName(name); err != nil {
		return nil, err
	}
	if len(envs) > MaxEnvs {
		return nil, tokenward.Errorf(tokenward.EINVALID, "more than %d environments", MaxEnvs)
	}
	for i, e := range envs {
		if err := tokenward.ValidateEnvName(e); err != nil {
			return nil, err
		}
		if slices.Contains(envs[:i], e) {
			return nil, tokenward.Errorf(tokenward.EINVALID, "environment %s listed twice", e)
		}
	}
	if err := require(tok, tokenward.ActionAdmin, name, "*", "*"); err != nil {
		return nil, err
	}
	kr, err := c.freshKeyring(ctx)
	if err != nil {
		return nil, err
	}
	wrapped, err := kr.WrapDataKey(name, currentDataKeyVersion, seal.NewKey())
	if err != nil {
		return nil, err
	}
	p := &tokenward.Project{Name: name, Envs: slices.Sorted(slices.Values(envs)), CreatedAt: c.Now().UTC()}
	if p.Envs == nil {
		p.Envs = []string{}
	}
	if err := c.Store.CreateProject(ctx, p, &tokenward.DataKey{Project: name, Version: currentDataKeyVersion, Wrapped: wrapped}); err != nil {
		return nil, err
	}
	return p, nil
}

// visible reports whether tok holds any grant that reaches into project.
func visible(tok *tokenward.Token, project string) bool {
	for _, g := range tok.Grants {
		if g.Covers(tokenward.Grant{Action: g.Action, Project: project, Env: g.Env, Name: g.Name}) {
			return true
		}
	}
	return false
}

// Projects lists the projects tok has any grant in.
func (c *Core) Projects(ctx context.Context, tok *tokenward.Token) ([]*tokenward.Project, error) {
	all, err := c.Store.Projects(ctx)
	if err != nil {
		return nil, err
	}
	return filter(all, func(p *tokenward.Project) bool { return visible(tok, p.Name) }), nil
}

// Project returns one project tok has any grant in.
func (c *Core) Project(ctx context.Context, tok *tokenward.Token, name string) (*tokenward.Project, error) {
	if err := tokenward.ValidateProjectName(name); err != nil {
		return nil, err
	}
	if !visible(tok, name) {
		return nil, tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: any action in project %s", name)
	}
	return c.Store.Project(ctx, name)
}

// CreateEnv adds an environment to a project.
func (c *Core) CreateEnv(ctx context.Context, tok *tokenward.Token, project, env string) error {
	if err := validEnv(project, env); err != nil {
		return err
	}
	if err := require(tok, tokenward.ActionAdmin, project, env, "*"); err != nil {
		return err
	}
	return c.Store.CreateEnv(ctx, project, env, c.Now().UTC())
}
