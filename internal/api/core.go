package api

import (
	"time"

	"github.com/tokenward/tokenward"
)

// CreateProjectRequest is the body of POST /v1/projects.
type CreateProjectRequest struct {
	Name         string   `json:"name"`
	Environments []string `json:"environments"`
}

// CreateEnvRequest is the body of POST /v1/projects/{project}/envs.
type CreateEnvRequest struct {
	Name string `json:"name"`
}

// ProjectList is the answer of GET /v1/projects.
type ProjectList struct {
	Projects []*tokenward.Project `json:"projects"`
}

// SecretList is the answer of GET /v1/secrets/{project}/{env}: metadata,
// no values.
type SecretList struct {
	Secrets []*tokenward.Secret `json:"secrets"`
}

// EnvValuesResponse is the answer of GET /v1/values/{project}/{env}: every
// secret of the environment the token may read, with its current value.
type EnvValuesResponse struct {
	Project string              `json:"project"`
	Env     string              `json:"environment"`
	Values  map[string]string   `json:"values"`
	Secrets []*tokenward.Secret `json:"secrets"`
}

// SecretResponse is a secret's metadata with one version's value.
type SecretResponse struct {
	*tokenward.Secret
	Value        string `json:"value"`
	ValueVersion int    `json:"value_version"`
}

// PutSecretRequest is the body of PUT /v1/secrets/{project}/{env}/{name}:
// a new version, and the metadata fields to change (nil: unchanged).
type PutSecretRequest struct {
	Value       *string    `json:"value"`
	Owner       *string    `json:"owner,omitempty"`
	Description *string    `json:"description,omitempty"`
	Tags        *[]string  `json:"tags,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	IfVersion   *int       `json:"if_version,omitempty"`
}

// SecretVersions is the answer of GET .../{name}/versions.
type SecretVersions struct {
	Versions []*tokenward.SecretVersion `json:"versions"`
}

// RollbackSecretRequest is the body of POST .../{name}/rollback.
type RollbackSecretRequest struct {
	To int `json:"to"`
}

// TokenList is the answer of GET /v1/tokens.
type TokenList struct {
	Tokens []*tokenward.Token `json:"tokens"`
}

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind,omitempty"`
	Owner  string   `json:"owner,omitempty"`
	Grants []string `json:"grants"`        // ACTION:PROJECT/ENV/NAME
	TTL    string   `json:"ttl,omitempty"` // Go duration, e.g. "24h"
}

// CreateTokenResponse carries a new token, shown once (POST /v1/tokens and
// POST /v1/auth/oidc/login).
type CreateTokenResponse struct {
	Token  *tokenward.Token `json:"token"`
	Secret string           `json:"secret"`
}

// RevokeTokenRequest is the optional body of POST /v1/tokens/{id}/revoke.
type RevokeTokenRequest struct {
	// Cascade revokes every token the token created, transitively, too.
	Cascade bool `json:"cascade,omitempty"`
}

// RevokeTokenResponse is the answer of POST /v1/tokens/{id}/revoke: the
// token as before, and with cascade the ids the call revoked (the token's
// first unless it was revoked already, then its descendants'; empty when a
// run again found nothing left).
type RevokeTokenResponse struct {
	*tokenward.Token
	Revoked []string `json:"revoked,omitzero"`
}

// KeyRotation is the answer of POST /v1/keys/rotate.
type KeyRotation struct {
	MasterKeyID uint32 `json:"master_key_id"`
}
