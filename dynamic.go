package tokenward

import (
	"strings"
	"time"
)

// DynamicSource is a path whose every read makes a new credential that
// exists for one lease: a database role created for one CI job and
// dropped when the job ends or the lease runs out. Config holds the kind's
// settings (for postgres: the path of the secret holding the admin
// connection URL, the group role, the creation and revocation SQL) and
// never a credential itself.
type DynamicSource struct {
	Project string            `json:"project"`
	Env     string            `json:"env"`
	Name    string            `json:"name"`
	Kind    string            `json:"kind"`
	Config  map[string]string `json:"config"`
	// TTL is a new lease's lifetime, and how far a renewal extends it;
	// MaxTTL bounds a lease's whole life from its creation.
	TTL    time.Duration `json:"ttl"`
	MaxTTL time.Duration `json:"max_ttl"`
	// MaxLeases caps the source's live leases (0: the server's default).
	MaxLeases int       `json:"max_leases,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Path is the source's project/env/name.
func (s *DynamicSource) Path() string { return s.Project + "/" + s.Env + "/" + s.Name }

// SecretAtSourcePath is the error of a secret created at a dynamic
// source's path, and SourceAtSecretPath of a source at a stored secret's:
// a reader of the path would get one of the two and never know of the
// other (a stored password where a pipeline expects a credential made for
// it alone).
func SecretAtSourcePath(project, env, name string) *Error {
	return Errorf(ECONFLICT, "%s/%s/%s is a dynamic source; a stored secret needs a name of its own", Printable(project), Printable(env), Printable(name))
}

// LeaseInRetiredEnv is CreateLease's refusal in an archived (retired)
// environment: nothing new comes alive in a decommissioned scope.
func LeaseInRetiredEnv(project, env string) *Error {
	return Errorf(ECONFLICT, "environment %s/%s is retired; restore it first with `tokenward env restore %s/%s`", Printable(project), Printable(env), Printable(project), Printable(env))
}

// SourceAtSecretPath: see SecretAtSourcePath.
func SourceAtSecretPath(project, env, name string) *Error {
	return Errorf(ECONFLICT, "%s/%s/%s is a stored secret; a dynamic source needs a name of its own", Printable(project), Printable(env), Printable(name))
}

// ArchivedAtSources is the error of restoring an environment n of whose
// archived secrets' paths dynamic sources took while it was archived.
func ArchivedAtSources(n int, project, env string) *Error {
	return Errorf(ECONFLICT, "%d archived secrets of %s/%s have the paths of dynamic sources made since; delete those sources to restore", n, Printable(project), Printable(env))
}

// LeaseState is where a lease is in its life.
type LeaseState string

const (
	// LeaseCreating is recorded before the credential is made, so a crash
	// between the two leaves a row the sweep finds.
	LeaseCreating LeaseState = "creating"
	// LeaseActive: the credential exists and was handed out.
	LeaseActive LeaseState = "active"
	// LeaseRevoking: revocation was asked for and has not yet succeeded
	// (it is retried with backoff until it does).
	LeaseRevoking LeaseState = "revoking"
	// LeaseRevoked: the credential is gone.
	LeaseRevoked LeaseState = "revoked"
)

// Live reports whether a credential may exist for a lease in state s.
func (s LeaseState) Live() bool { return s != LeaseRevoked }

// RevokedLeases counts the leases of ls that are revoked (the others are
// being revoked, retried until the target answers).
func RevokedLeases(ls []*Lease) int {
	n := 0
	for _, l := range ls {
		if l.State == LeaseRevoked {
			n++
		}
	}
	return n
}

// Lease is one credential made from a dynamic source, tied to the token
// that asked for it. It never holds the credential's password: only the
// role (user) name revocation needs.
type Lease struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	Env     string `json:"env"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	// Role is the credential's user name, what revocation removes.
	Role    string     `json:"role"`
	TokenID string     `json:"token_id"`
	Job     string     `json:"job,omitempty"` // the CI job of a just-in-time token
	State   LeaseState `json:"state"`
	// ExpiresAt is when the credential stops working; a renewal moves it,
	// never past MaxExpiresAt (nor past the token's own expiry).
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	MaxExpiresAt time.Time `json:"max_expires_at"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	// Reason says why revocation was asked for (expired, token revoked,
	// requested by a token, the run ended, orphaned creation).
	Reason string `json:"reason,omitempty"`
	// Attempts, NextAttemptAt and Error describe a revocation being retried.
	Attempts      int       `json:"attempts,omitempty"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	Error         string    `json:"error,omitempty"`
}

// Source is the path of the lease's dynamic source.
func (l *Lease) Source() string { return l.Project + "/" + l.Env + "/" + l.Name }

// Limits of a dynamic source, here so that what checks a source before it
// reaches the server (the manifest) shares them without the engine.
const (
	// MaxLeaseTTL is the longest a source's max TTL may be.
	MaxLeaseTTL = 30 * 24 * time.Hour
	// MaxSourceLeases is the most a source's MaxLeases may be.
	MaxSourceLeases = 100_000
)

// PathUnder reports whether path (project/env/name) is prefix or lies
// under it, by whole segments (LeaseFilter.Prefix): acme/prod/db is under
// acme, acme/prod, acme/prod/ and itself, not under acme/prod/d.
func PathUnder(path, prefix string) bool {
	p := strings.TrimSuffix(prefix, "/")
	return p == "" || path == p || strings.HasPrefix(path, p+"/")
}

// LeaseFilter selects leases: all of them by default.
type LeaseFilter struct {
	// Prefix keeps leases whose source path starts with its whole
	// segments: "acme/prod/db" is that source (not acme/prod/db2),
	// "acme/prod" or "acme/prod/" every source of acme/prod.
	Prefix string
	// TokenID keeps the leases of one token.
	TokenID string
	// Live keeps leases not yet revoked.
	Live bool
}

// LeaseLimits caps live leases when a lease is created (0: no cap).
type LeaseLimits struct {
	PerSource int
	PerToken  int
}
