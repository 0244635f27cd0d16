package postgres

import (
	"context"

	"github.com/tokenward/tokenward"
)

// The read cache (internal/readcache) on the change clock (notify.go): a
// repeated read of a current secret, an environment or a token by id
// needs no query while no change was committed here or notified from
// another server, and none is trusted while the listener is down.

func (db *DB) CurrentSecret(ctx context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	return db.current.CurrentSecret(ctx, project, env, name, db.currentSecret)
}

func (db *DB) Secrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	return db.current.Secrets(ctx, project, env, db.secrets)
}

func (db *DB) EnvSecrets(ctx context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
	return db.current.EnvSecrets(ctx, project, env, db.envSecrets)
}

func (db *DB) Token(ctx context.Context, id string) (*tokenward.Token, error) {
	return db.current.Token(ctx, id, db.token)
}
