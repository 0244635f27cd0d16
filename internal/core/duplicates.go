package core

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/tokenward/tokenward"
)

// Duplicates returns the groups of secrets (paths project/env/NAME) whose
// current values are equal and of which at least one is in project, among
// the secrets tok may read in any project; each group has two or more
// paths, sorted, and the groups are sorted by their first path. Values are compared by HMAC-SHA256 under a
// key drawn for this call alone and dropped at its end, so neither a value
// nor a fingerprint that could be compared with another call's ever leaves
// the engine: the answer is only which paths match.
func (c *Core) Duplicates(ctx context.Context, tok *tokenward.Token, project string) ([][]string, error) {
	if err := tokenward.ValidateProjectName(project); err != nil {
		return nil, err
	}
	if _, err := c.Project(ctx, tok, project); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	defer clear(key)
	// A value shared with another project is as much a finding as one
	// shared between environments, so every project tok sees is compared.
	groups := map[[sha256.Size]byte][]string{}
	err := c.eachReadableValue(ctx, tok, func(s *tokenward.Secret, _ int, value []byte) error {
		mac := hmac.New(sha256.New, key)
		mac.Write(value)
		var fp [sha256.Size]byte
		mac.Sum(fp[:0])
		groups[fp] = append(groups[fp], s.Path())
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := [][]string{}
	for _, paths := range groups {
		inProject := slices.ContainsFunc(paths, func(p string) bool { return strings.HasPrefix(p, project+"/") })
		if len(paths) > 1 && inProject {
			slices.Sort(paths)
			out = append(out, paths)
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return slices.Compare(a, b) })
	return out, nil
}

// eachReadableValue calls fn with the current value of every secret tok may
// read, in every project it sees. The value is cleared after fn returns, so
// fn must not keep it.
func (c *Core) eachReadableValue(ctx context.Context, tok *tokenward.Token, fn func(s *tokenward.Secret, version int, value []byte) error) error {
	projects, err := c.Projects(ctx, tok)
	if err != nil {
		return err
	}
	for _, p := range projects {
		for _, env := range p.Envs {
			if !tok.Grants.AllowsAnyIn(tokenward.ActionRead, p.Name, env) {
				continue
			}
			secrets, versions, err := c.Store.EnvSecrets(ctx, p.Name, env)
			if err != nil {
				return err
			}
			for i, s := range secrets {
				if !tok.Grants.Allows(tokenward.ActionRead, p.Name, env, s.Name) {
					continue
				}
				value, err := c.openValue(ctx, p.Name, env, s.Name, versions[i].Version, versions[i].Ciphertext)
				if err != nil {
					return err
				}
				err = fn(s, versions[i].Version, value)
				clear(value)
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}
