// Package api is the JSON wire format of tokenward's HTTP API under /v1:
// the request and response bodies, the error body, and the check of names
// that travel as path segments. The server (internal/httpapi) encodes these
// types and the client (internal/client) decodes them, so the two cannot
// drift. It imports only the standard library and the domain package;
// a body that carries a feature package's record (a rotation, an anomaly)
// takes that record as a type parameter.
package api

import "github.com/tokenward/tokenward"

// ErrorBody is the JSON form of every error response.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Err returns the domain error b carries, or nil when it carries none.
func (b *ErrorBody) Err() error {
	if b.Error.Code == "" {
		return nil
	}
	return &tokenward.Error{Code: b.Error.Code, Message: b.Error.Message}
}

// Kind is what a name in a request path names.
type Kind string

// The kinds of names that travel as path segments.
const (
	KindProject      Kind = "project"
	KindEnv          Kind = "environment"
	KindSecret       Kind = "secret"
	KindToken        Kind = "token name or id" // #nosec G101 -- a label for error messages, not a credential
	KindBinding      Kind = "binding name"
	KindAnomaly      Kind = "anomaly id"
	KindBulkRotation Kind = "bulk rotation id"
	KindRoute        Kind = "route"
)

// CheckName checks value as a name of kind in a request path. Projects,
// environments and secrets are checked against their whole form; other
// names only as path segments (not empty, ".", ".." or holding '/'), the
// server checks the rest. The client calls it before sending a request
// and the server before routing one, so a bad name gets the same error
// from both, and never a different route: a token named "self" is
// refused, since GET /v1/tokens/self is the caller's own token (it is
// reached by its id).
func CheckName(kind Kind, value string) error {
	switch kind {
	case KindToken:
		if value == "self" {
			return tokenward.Errorf(tokenward.EINVALID, "%s %q is the path of the caller's own token (/v1/tokens/self): give the token's id", kind, value)
		}
	case KindProject:
		return tokenward.ValidateProjectName(value)
	case KindEnv:
		return tokenward.ValidateEnvName(value)
	case KindSecret:
		return tokenward.ValidateSecretName(value)
	case KindRoute:
		return tokenward.ValidateRouteName(value)
	}
	return tokenward.ValidatePathSegment(string(kind), value)
}
