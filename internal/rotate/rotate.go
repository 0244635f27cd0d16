// Package rotate rotates secrets without downtime: a persisted, resumable
// state machine over staged versions (PENDING, CURRENT, PREVIOUS), the
// rotators that change credentials in real systems, a scheduler and bulk
// (incident) rotation.
package rotate

import (
	"context"
	"errors"
	"time"

	"github.com/tokenward/tokenward"
)

// Version labels, the AWS Secrets Manager model. run/export deliver CURRENT.
const (
	LabelCurrent  = "CURRENT"
	LabelPending  = "PENDING"
	LabelPrevious = "PREVIOUS"
)

// Step is the next step a rotation will run. A rotation moves
// create → set → test → finish → revoke → done; a failure before finish
// rolls back to failed with CURRENT untouched.
type Step string

const (
	StepCreate Step = "create" // the rotator makes a new value; stored as PENDING
	StepSet    Step = "set"    // the upstream system accepts the PENDING value
	StepTest   Step = "test"   // the PENDING value is shown to work
	StepFinish Step = "finish" // PENDING→CURRENT, CURRENT→PREVIOUS, atomically
	StepRevoke Step = "revoke" // after grace: the rotator revokes PREVIOUS upstream
	StepDone   Step = "done"
	StepFailed Step = "failed" // rolled back (before finish) or revoke gave up
)

// InFlight reports whether a rotation at step s still holds its secret's
// one rotation slot.
func (s Step) InFlight() bool { return s != StepDone && s != StepFailed }

// Rotation is the persisted record of one rotation of one secret. It never
// holds a secret value: values live in the secret's versions, sealed.
type Rotation struct {
	ID      string            `json:"id"`
	Path    string            `json:"secret"` // project/env/name
	Rotator string            `json:"rotator"`
	Config  map[string]string `json:"config,omitempty"`
	Grace   time.Duration     `json:"grace"`
	Reason  string            `json:"reason,omitempty"` // "scheduled", "manual", "bulk: ..."
	Step    Step              `json:"step"`
	// Attempt counts failed tries of the current step.
	Attempt int `json:"attempt"`
	// CurrentVersion was CURRENT when the rotation started (0: none); it
	// becomes PREVIOUS at finish.
	CurrentVersion int `json:"current_version"`
	// PendingVersion is the version created by this rotation (0: not yet).
	PendingVersion int       `json:"pending_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// NextAt is when the rotation may next run: the retry time after a
	// failure, or the end of grace before revoke.
	NextAt     time.Time `json:"next_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Error is the last failure's message; never holds a value.
	Error string `json:"error,omitempty"`
	// Rev is bumped by every update; UpdateRotation refuses a stale one.
	Rev int `json:"rev"`
}

// Request is what a rotator sees for one step. Values are only in memory.
type Request struct {
	RotationID string
	Path       string
	Config     map[string]string
	// Current is the value of CURRENT when the rotation started (nil if the
	// secret had none); CurrentVersion its number.
	Current        []byte
	CurrentVersion int
	// Pending is the new value (nil during Create).
	Pending        []byte
	PendingVersion int
}

// Rotator changes one kind of credential in the system that checks it.
//
// Every method may be called again after a crash with the same Request, so
// each must be idempotent given its inputs: Set must accept being told a
// value it already holds, Revoke must succeed for a value already revoked.
// Errors must never contain a value.
type Rotator interface {
	// Validate checks a policy's config for this rotator.
	Validate(config map[string]string) error
	// Create returns a new value. It is stored as PENDING before Set.
	Create(ctx context.Context, req *Request) ([]byte, error)
	// Set makes the upstream system accept req.Pending while req.Current
	// keeps working.
	Set(ctx context.Context, req *Request) error
	// Test proves req.Pending works. CURRENT moves only after it succeeds.
	Test(ctx context.Context, req *Request) error
	// Revoke makes req.Current — by then the PREVIOUS version — stop
	// working upstream, at the end of grace. req.Pending is the new CURRENT.
	Revoke(ctx context.Context, req *Request) error
}

// Discarder is an optional power of a Rotator: undo Create/Set for a
// pending value that will never become CURRENT (the rotation rolled back).
type Discarder interface {
	Discard(ctx context.Context, req *Request) error
}

// Version is one version of a secret as rotation sees it.
type Version struct {
	Number int
	// RotationID is the rotation that created this version ("" otherwise).
	RotationID string
	Value      []byte
	Labels     []string
}

// Secrets is the secret storage rotation works on. Paths are
// project/env/name. Errors are *tokenward.Error; ENOTFOUND where noted.
type Secrets interface {
	// PutPending stores value as a new version of path created by
	// rotationID and labels it PENDING (moving the label off any other
	// version). It returns the new version's number.
	PutPending(ctx context.Context, path, rotationID string, value []byte) (int, error)
	// Labeled returns the version carrying label, or ENOTFOUND.
	Labeled(ctx context.Context, path, label string) (*Version, error)
	// Version returns version n of path, or ENOTFOUND.
	Version(ctx context.Context, path string, n int) (*Version, error)
	// Promote moves, in one transaction, CURRENT to PREVIOUS and PENDING
	// (which must be on version n) to CURRENT. If n is already CURRENT it
	// does nothing, so it is safe to repeat after a crash.
	Promote(ctx context.Context, path string, n int) error
	// Unlabel removes label from version n if n carries it.
	Unlabel(ctx context.Context, path, label string, n int) error
	// Restore moves, in one transaction, CURRENT back to version n (which
	// must carry PREVIOUS) and drops the PREVIOUS label: a rollback within
	// grace. If n is already CURRENT it does nothing.
	Restore(ctx context.Context, path string, n int) error
}

// SecretReader reads the CURRENT value of another stored secret, e.g. the
// admin DSN the postgres rotator connects with.
type SecretReader interface {
	ReadSecret(ctx context.Context, path string) ([]byte, error)
}

// Store persists rotations and policies. Errors are *tokenward.Error:
// ENOTFOUND for a missing record, ECONFLICT as documented.
type Store interface {
	// CreateRotation stores a new rotation; ECONFLICT if its secret already
	// has one in flight. This is what makes one rotation per secret.
	CreateRotation(ctx context.Context, r *Rotation) error
	// UpdateRotation stores r if the stored Rev equals r.Rev, and bumps
	// r.Rev; ECONFLICT otherwise (someone else advanced it).
	UpdateRotation(ctx context.Context, r *Rotation) error
	// Rotation returns one rotation by id.
	Rotation(ctx context.Context, id string) (*Rotation, error)
	// InFlight lists rotations not done or failed, oldest first.
	InFlight(ctx context.Context) ([]*Rotation, error)
	// History lists the rotations of path ("" for all), newest first, at
	// most limit (0: no limit).
	History(ctx context.Context, path string, limit int) ([]*Rotation, error)

	// PutPolicy creates or replaces the policy of p.Path.
	PutPolicy(ctx context.Context, p *Policy) error
	// Policy returns the policy of path.
	Policy(ctx context.Context, path string) (*Policy, error)
	// Policies lists every policy, by path.
	Policies(ctx context.Context) ([]*Policy, error)
	// DuePolicies lists enabled policies whose NextAt is at or before now.
	DuePolicies(ctx context.Context, now time.Time) ([]*Policy, error)
	// ClaimPolicyRun claims the run of p due at due: it stores p.LastAt and
	// p.NextAt (and nothing else) if the policy of p.Path is enabled and
	// its stored NextAt is still due, and reports whether it did. False
	// means the run is not this caller's to start: another scheduler (a
	// leader whose leadership overlaps this one's) claimed it, or the
	// policy was changed, disabled or deleted since it was read.
	ClaimPolicyRun(ctx context.Context, p *Policy, due time.Time) (bool, error)
}

// Claimer is an optional power of a Store that several servers share
// (Machine.Claims): it makes one runner at a time, across every server,
// run a rotation's steps. Without it the Machine's runners in one process
// take turns, which is enough for a store only one server uses.
// UpdateRotation's check of Rev stays the backstop: a step's record never
// overwrites another runner's.
type Claimer interface {
	// ClaimRotation waits until this process holds the claim on rotation
	// id, or ctx ends. The claim lasts until release is called, or until
	// it is lost (the connection holding it failed); the returned context
	// ends then, so steps run under it stop. A runner that dies loses its
	// claim with it, and the rotation can be resumed at once.
	ClaimRotation(ctx context.Context, id string) (claimed context.Context, release func(), err error)
}

// ErrStale is returned by Store.UpdateRotation when the stored record moved
// on since it was read: another runner advanced the rotation.
var ErrStale = &tokenward.Error{Code: tokenward.ECONFLICT, Message: "rotation was changed concurrently"}

// ErrInFlight is returned by Store.CreateRotation when the secret already has
// a rotation in flight.
var ErrInFlight = &tokenward.Error{Code: tokenward.ECONFLICT, Message: "a rotation of this secret is already in flight"}

// Permanent marks err as a failure that trying the step again cannot fix:
// one that comes from the rotation's own values (versions, which never
// change) or an upstream refusal that will give the same answer. The
// Machine then ends the rotation at once, as after its last attempt,
// instead of retrying it. Its message and code are err's; nil stays nil.
// Mark only what is sure: a transient failure marked permanent ends a
// rotation that a retry would have finished (and, at revoke, leaves the
// old value valid).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func errNotFound(format string, args ...any) error {
	return tokenward.Errorf(tokenward.ENOTFOUND, format, args...)
}

func errInvalid(format string, args ...any) error {
	return tokenward.Errorf(tokenward.EINVALID, format, args...)
}
