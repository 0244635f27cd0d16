package tokenward

import (
	"context"
	"time"
)

// Store is the persistence every backend (embedded SQLite, PostgreSQL)
// provides. It stores only sealed values and token hashes. Each method is one
// transaction: it either happens whole or not at all. Errors are *Error with
// ENOTFOUND or ECONFLICT where a caller branches on them; anything else is
// internal. The conformance suite in internal/storetest is the contract.
type Store interface {
	// Keyring returns the sealed master keyring, or ENOTFOUND before init.
	Keyring(ctx context.Context) ([]byte, error)
	// InitKeyring stores the first sealed keyring; ECONFLICT if one exists.
	InitKeyring(ctx context.Context, sealed []byte) error
	// RotateKeyring replaces the sealed keyring from, the one the rotation
	// read, with to, and every data key's wrapped form, in one transaction.
	// keys must hold every existing data key. ECONFLICT, and nothing
	// changed, if the stored keyring is no longer from (another server
	// rotated since) or keys is not every data key.
	RotateKeyring(ctx context.Context, from, to []byte, keys []*DataKey) error

	// CreateProject creates p with its environments and its first data key.
	// ECONFLICT if the project exists.
	CreateProject(ctx context.Context, p *Project, key *DataKey) error
	// Project returns a project with its environments, or ENOTFOUND.
	Project(ctx context.Context, name string) (*Project, error)
	// Projects lists every project, by name.
	Projects(ctx context.Context) ([]*Project, error)
	// CreateEnv adds an environment; ENOTFOUND for no project, ECONFLICT if
	// it exists.
	CreateEnv(ctx context.Context, project, env string, at time.Time) error
	// DataKeys returns every data key of every project.
	DataKeys(ctx context.Context) ([]*DataKey, error)
	// DataKey returns one data key, or ENOTFOUND.
	DataKey(ctx context.Context, project string, version int) (*DataKey, error)

	// PutSecret writes a new version of a secret, creating the secret when
	// prev is 0, and makes it current. The new version number must be
	// prev+1 (or, in a LabelStore, above the highest version when a
	// rotation's version took prev+1), and prev must be the secret's current
	// version (0: it must not exist), else ECONFLICT, so writers that sealed
	// against a stale version lose cleanly. meta's metadata fields replace
	// the stored ones. ENOTFOUND for no project/env; ECONFLICT
	// (SecretAtSourcePath) when creating a secret at a dynamic source's
	// path, in a store that is also a LeaseStore.
	PutSecret(ctx context.Context, meta *Secret, prev int, v *SecretVersion) error
	// Secret returns a secret's metadata, or ENOTFOUND.
	Secret(ctx context.Context, project, env, name string) (*Secret, error)
	// CurrentSecret returns a secret's metadata and its current version with
	// its ciphertext, in one read; ENOTFOUND for no secret.
	CurrentSecret(ctx context.Context, project, env, name string) (*Secret, *SecretVersion, error)
	// SecretVersion returns one version with its ciphertext, or ENOTFOUND.
	SecretVersion(ctx context.Context, project, env, name string, version int) (*SecretVersion, error)
	// Secrets lists the secrets of project/env, by name; ENOTFOUND for no
	// project/env.
	Secrets(ctx context.Context, project, env string) ([]*Secret, error)
	// EnvSecrets returns every secret of project/env with its current
	// version's ciphertext, in one read (for run/export).
	EnvSecrets(ctx context.Context, project, env string) ([]*Secret, []*SecretVersion, error)
	// SecretVersions lists a secret's versions, oldest first, without
	// ciphertexts; ENOTFOUND for no secret.
	SecretVersions(ctx context.Context, project, env, name string) ([]*SecretVersion, error)

	// CreateToken stores a token record under the SHA-256 of the token.
	// ECONFLICT if an active token has the same name.
	CreateToken(ctx context.Context, t *Token, hash [32]byte) error
	// TokenByHash returns the token with that hash (revoked or not), or
	// ENOTFOUND.
	TokenByHash(ctx context.Context, hash [32]byte) (*Token, error)
	// Token returns a token by id, or ENOTFOUND.
	Token(ctx context.Context, id string) (*Token, error)
	// TokenByName returns the active (unrevoked) token with that name, or
	// ENOTFOUND.
	TokenByName(ctx context.Context, name string) (*Token, error)
	// Tokens lists every token, oldest first.
	Tokens(ctx context.Context) ([]*Token, error)
	// RevokeToken marks a token revoked at at; ENOTFOUND for no token. It is
	// idempotent: revoking a revoked token keeps its first revocation time.
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// TouchTokens records last use for many tokens at once.
	TouchTokens(ctx context.Context, uses []TokenUse) error

	Close() error
}

// TokenUse is one token's latest use, recorded in batches.
type TokenUse struct {
	ID string
	At time.Time
	IP string
}

// Version labels: the staged versions of rotation (the AWS Secrets Manager
// model). CURRENT is always the secret's Version; PENDING (a rotation's new
// value, not yet in use) and PREVIOUS (the value CURRENT replaced, valid
// through the grace period) are stored labels. A plain write makes its new
// version current and moves no label; labels move only through rotation and
// rollback.
const (
	LabelCurrent  = "CURRENT"
	LabelPending  = "PENDING"
	LabelPrevious = "PREVIOUS"
)

// VersionLabels is where a secret's labels point (0: nowhere) and its
// highest version number, which may be above CURRENT while a rotation's
// PENDING version exists or after one rolled back.
type VersionLabels struct {
	Current  int `json:"current"`
	Pending  int `json:"pending,omitempty"`
	Previous int `json:"previous,omitempty"`
	Latest   int `json:"latest"`
	// PendingRotation is the id of the rotation that made PENDING.
	PendingRotation string `json:"pending_rotation,omitempty"`
}

// LabelStore is the power of a Store to keep labelled (staged) versions for
// rotation. Errors are *Error: ENOTFOUND for no secret, ECONFLICT as noted.
// Because a PENDING version may hold the number after CURRENT, a plain
// PutSecret then writes version Latest+1 (not prev+1); PutSecret accepts
// any new version above Latest while prev is the current version.
// internal/storetest.RunLabels is the contract.
type LabelStore interface {
	// SecretLabels returns where the labels of a secret point.
	SecretLabels(ctx context.Context, project, env, name string) (*VersionLabels, error)
	// PutPendingVersion stores v, whose number must be Latest+1 (else
	// ECONFLICT), as a new version of an existing secret labelled PENDING
	// for rotationID, moving the label off any other version. The current
	// version does not change.
	PutPendingVersion(ctx context.Context, project, env, name, rotationID string, v *SecretVersion) error
	// PromoteVersion moves, in one transaction, CURRENT to PREVIOUS and
	// PENDING (which must be on version n, else ECONFLICT) to CURRENT. If n
	// is CURRENT already it does nothing, so a repeat after a crash is safe.
	PromoteVersion(ctx context.Context, project, env, name string, n int, at time.Time) error
	// RestoreVersion moves, in one transaction, CURRENT back to version n,
	// which must carry PREVIOUS (else ECONFLICT), and drops PREVIOUS: a
	// rollback within grace. If n is CURRENT already it does nothing.
	RestoreVersion(ctx context.Context, project, env, name string, n int, at time.Time) error
	// UnlabelVersion removes label (PENDING or PREVIOUS) from version n if n
	// carries it.
	UnlabelVersion(ctx context.Context, project, env, name, label string, n int) error
}

// ChangeClock is the power of a Store to say when what it stores may have
// changed, so that caches above it (the engine's token records and
// keyring, a store's own read cache) are trusted exactly as long as
// nothing changed. Generation moves on with every commit that changes a
// cached record — by this process before the commit's caller gets control
// back, by another process or server as soon as the store learns of it —
// and never goes back. ok is false when the store cannot tell (a
// PostgreSQL listener reconnecting): a cache is then bypassed, not trusted.
type ChangeClock interface {
	Generation() (gen uint64, ok bool)
}

// VersionState is whether a version was deleted (soft: its ciphertext
// kept, undone by undelete) or destroyed (its ciphertext erased, for
// good): the version states of Vault's KV v2.
type VersionState struct {
	DeletedAt   time.Time `json:"deleted_at,omitzero"`
	DestroyedAt time.Time `json:"destroyed_at,omitzero"`
}

// VersionDeleteStore is the power of a Store to delete, undelete and
// destroy single versions of a secret. Errors are *Error: ENOTFOUND for a
// secret or a version that does not exist (nothing is changed then).
// internal/storetest.RunVersionDeletes is the contract.
type VersionDeleteStore interface {
	// VersionStates returns the states of a secret's deleted or destroyed
	// versions, by version; versions in neither state are absent.
	VersionStates(ctx context.Context, project, env, name string) (map[int]VersionState, error)
	// DeleteVersions marks versions deleted at at; a version deleted or
	// destroyed already keeps its state.
	DeleteVersions(ctx context.Context, project, env, name string, versions []int, at time.Time) error
	// UndeleteVersions clears the deletion of versions; a destroyed
	// version stays destroyed.
	UndeleteVersions(ctx context.Context, project, env, name string, versions []int) error
	// DestroyVersions erases the ciphertext of versions (it becomes
	// empty) and marks them destroyed at at, for good.
	DestroyVersions(ctx context.Context, project, env, name string, versions []int, at time.Time) error
}

// LeaseStore is the power of a Store to keep dynamic sources and their
// leases. Errors are *Error: ENOTFOUND for a source or lease that does not
// exist, others as noted. internal/storetest.RunLeases is the contract.
type LeaseStore interface {
	// PutDynamicSource creates a source, or replaces one (keeping its
	// CreatedAt and CreatedBy); ECONFLICT (SourceAtSecretPath) at a stored
	// secret's path. A source and a secret never share a path, checked in
	// the write's transaction both ways, so two writers racing cannot make
	// one of each. ECONFLICT too for a change of kind or config while a
	// lease of the source is live (creating, active or revoking): its
	// credential is revoked through them.
	PutDynamicSource(ctx context.Context, s *DynamicSource) error
	// DynamicSource returns one source.
	DynamicSource(ctx context.Context, project, env, name string) (*DynamicSource, error)
	// DynamicSources lists every source, by path.
	DynamicSources(ctx context.Context) ([]*DynamicSource, error)
	// DeleteDynamicSource deletes a source; ECONFLICT while it has live
	// leases.
	DeleteDynamicSource(ctx context.Context, project, env, name string) error

	// CreateLease records l, whose source must exist (else ENOTFOUND),
	// counting live leases in the same transaction: ERATELIMITED when
	// the source or the token is at its cap; ECONFLICT for a duplicate id,
	// or when l's environment is archived (LeaseInRetiredEnv). It waits
	// while HoldScope holds l's environment or project.
	CreateLease(ctx context.Context, l *Lease, limits LeaseLimits) error
	// HoldScope keeps leases from being created in project/env (env "":
	// in every environment of project), on every server, until release:
	// a retirement holds it from listing the scope's live leases to
	// revoke them until its archive is committed, so no lease is made
	// unseen in between (CreateLease then refuses the archived
	// environment). It waits for the leases being created to be recorded.
	HoldScope(ctx context.Context, project, env string) (release func(), err error)
	// UpdateLease writes l's state, times, reason and retry fields if the
	// stored lease is in state from (else ECONFLICT): concurrent
	// renewals and revocations of one lease take turns.
	UpdateLease(ctx context.Context, l *Lease, from LeaseState) error
	// Lease returns one lease.
	Lease(ctx context.Context, id string) (*Lease, error)
	// Leases lists the leases f selects, oldest first.
	Leases(ctx context.Context, f LeaseFilter) ([]*Lease, error)
	// DueLeases returns at most limit leases the sweep must revoke, the
	// least tried first, then the longest due: active ones expired at now
	// or whose token is revoked or expired; creating ones created before
	// staleBefore (their maker died or gave up); revoking ones whose next
	// attempt is due at now.
	DueLeases(ctx context.Context, now, staleBefore time.Time, limit int) ([]*Lease, error)
	// PruneLeases deletes revoked leases revoked before before and
	// returns how many.
	PruneLeases(ctx context.Context, before time.Time) (int, error)
}

// GatewayRouteStore is the power of a Store to keep the gateway's routes,
// so that every server sharing the store serves the same routes. Errors
// are *Error: ENOTFOUND and ECONFLICT as noted. A store with a
// ChangeClock moves it on every change of a route, so a server may cache
// routes behind the clock. internal/storetest.RunGatewayRoutes is the
// contract.
type GatewayRouteStore interface {
	// CreateGatewayRoute stores r; ECONFLICT if its name is taken.
	CreateGatewayRoute(ctx context.Context, r *GatewayRoute) error
	// GatewayRoute returns one route, or ENOTFOUND.
	GatewayRoute(ctx context.Context, name string) (*GatewayRoute, error)
	// GatewayRoutes lists every route, by name.
	GatewayRoutes(ctx context.Context) ([]*GatewayRoute, error)
	// DeleteGatewayRoute removes the route named r.Name if it is stored as
	// r (every field, as GatewayRoute returned it or CreateGatewayRoute
	// stored it): ENOTFOUND if none, ECONFLICT if the stored one differs
	// (changed, or deleted and made again, since r was read), so that a
	// delete checked against r never removes another route.
	DeleteGatewayRoute(ctx context.Context, r *GatewayRoute) error
}

// ConsoleSession is one signed-in browser of the web console
// (internal/console). It is stored under the SHA-256 of its id — the
// random value in the browser's cookie — never under the id itself, and
// SealedToken is the token it signed in with, sealed under a key derived
// from the id: the database alone can neither resume a session nor read
// the token.
type ConsoleSession struct {
	TokenID     string
	SealedToken []byte
	CreatedAt   time.Time
	LastSeenAt  time.Time // the idle expiry counts from here
	ExpiresAt   time.Time // the absolute expiry
}

// ConsoleSessionStore is the power of a Store to keep the web console's
// sessions, so that every server sharing the database knows every
// session. Errors are *Error: ENOTFOUND and ECONFLICT as noted.
// internal/storetest.RunConsoleSessions is the contract.
type ConsoleSessionStore interface {
	// CreateConsoleSession stores s under hash; ECONFLICT if a session
	// has that hash.
	CreateConsoleSession(ctx context.Context, hash [32]byte, s *ConsoleSession) error
	// ConsoleSession returns the session stored under hash, or ENOTFOUND.
	ConsoleSession(ctx context.Context, hash [32]byte) (*ConsoleSession, error)
	// TouchConsoleSession moves a session's LastSeenAt forward to at (a
	// time before it changes nothing); ENOTFOUND for no session.
	TouchConsoleSession(ctx context.Context, hash [32]byte, at time.Time) error
	// DeleteConsoleSession removes a session; removing none is no error.
	DeleteConsoleSession(ctx context.Context, hash [32]byte) error
	// DeleteTokenConsoleSessions removes every session of a token and
	// returns how many it removed.
	DeleteTokenConsoleSessions(ctx context.Context, tokenID string) (int, error)
	// SweepConsoleSessions removes every session whose ExpiresAt is not
	// after now or whose LastSeenAt is before idleSince, and returns how
	// many it removed.
	SweepConsoleSessions(ctx context.Context, now, idleSince time.Time) (int, error)
}
