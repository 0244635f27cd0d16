package core

import (
	"context"

	"github.com/tokenward/tokenward"
)

// sharedReader is a store whose read cache answers without copies
// (internal/readcache, which both stores embed). What it returns may be
// the cache's own records, shared with every other caller: read them,
// never modify them.
type sharedReader interface {
	SharedEnvSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error)
	SharedSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error)
	SharedCurrentSecret(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error)
}

// currentSecretRO is the store's CurrentSecret for a caller that only reads
// the records (see sharedReader).
func (c *Core) currentSecretRO(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	if s, ok := c.Store.(sharedReader); ok {
		return s.SharedCurrentSecret(ctx, project, env, name)
	}
	return c.Store.CurrentSecret(ctx, project, env, name)
}

// envSecretsRO is the store's EnvSecrets for a caller that only reads the
// records (see sharedReader).
func (c *Core) envSecretsRO(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	if s, ok := c.Store.(sharedReader); ok {
		return s.SharedEnvSecrets(ctx, project, env)
	}
	return c.Store.EnvSecrets(ctx, project, env)
}

// secretsRO is the store's Secrets for a caller that only reads the
// records (see sharedReader).
func (c *Core) secretsRO(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	if s, ok := c.Store.(sharedReader); ok {
		return s.SharedSecrets(ctx, project, env)
	}
	return c.Store.Secrets(ctx, project, env)
}
