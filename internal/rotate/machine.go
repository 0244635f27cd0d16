package rotate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
)

// Machine runs rotations step by step, recording each step before the next,
// so that a fresh Machine over the same Store can Resume any of them.
type Machine struct {
	Store    Store
	Secrets  Secrets
	Rotators map[string]Rotator
	Now      func() time.Time
	Logger   *slog.Logger
	// MaxAttempts is how often a step is tried before the rotation rolls
	// back (before finish) or gives up revoking (after). A Permanent
	// failure is not tried again.
	MaxAttempts int
	// Backoff is the first retry delay; it doubles per attempt up to
	// MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// StepTimeout bounds each rotator call.
	StepTimeout time.Duration
	// Alert is called on every failed step (may be nil). It gets the
	// rotation record, whose Error never holds a value.
	Alert func(ctx context.Context, r *Rotation)
	// Failures counts failed steps, for a metric.
	Failures atomic.Int64
	// Claims, when set, is claimed around every run of a rotation's steps
	// (Advance, Rollback), for a store several servers share.
	Claims Claimer

	mu sync.Mutex
	// running holds, per rotation id advanced in this process, a channel
	// closed when that Advance returns.
	running map[string]chan struct{}

	// crash, in tests, stops the machine at a named point as if the process
	// died there: nothing after it runs.
	crash func(point string) bool
}

// NewMachine returns a Machine with default limits.
func NewMachine(store Store, secrets Secrets, rotators map[string]Rotator) *Machine {
	return &Machine{
		Store:       store,
		Secrets:     secrets,
		Rotators:    rotators,
		Now:         time.Now,
		Logger:      slog.New(slog.DiscardHandler),
		MaxAttempts: 5,
		Backoff:     time.Minute,
		MaxBackoff:  6 * time.Hour,
		StepTimeout: 2 * time.Minute,
	}
}

// errCrashed is returned when the test crash hook stopped the machine.
var errCrashed = errors.New("rotate: machine stopped at a crash point")

func (m *Machine) now() time.Time { return m.Now().UTC() }

func (m *Machine) log() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Logger.WithGroup("rotate")
}

func newRotationID() string { return "rot_" + strings.ToLower(rand.Text()) }

// Start records a new rotation of p.Path by p's rotator; ECONFLICT if the
// secret already has one in flight. It runs no step.
func (m *Machine) Start(ctx context.Context, p *Policy, reason string) (*Rotation, error) {
	if err := p.Validate(m.Rotators); err != nil {
		return nil, err
	}
	cur := 0
	switch v, err := m.Secrets.Labeled(ctx, p.Path, LabelCurrent); {
	case err == nil:
		cur = v.Number
	case tokenward.ErrorCode(err) != tokenward.ENOTFOUND:
		return nil, fmt.Errorf("start rotation of %s: %w", p.Path, err)
	}
	now := m.now()
	r := &Rotation{
		ID: newRotationID(), Path: p.Path, Rotator: p.Rotator, Config: p.Config, Grace: p.Grace,
		Reason: reason, Step: StepCreate, CurrentVersion: cur, CreatedAt: now, UpdatedAt: now,
	}
	if err := m.Store.CreateRotation(ctx, r); err != nil {
		return nil, err
	}
	m.log().Info("rotation started", "id", r.ID, "secret", r.Path, "rotator", r.Rotator, "reason", reason)
	return r, nil
}

// RotateNow starts a rotation of path under its stored policy and runs it
// until it finishes (or waits for grace, or fails). ECONFLICT if one is in
// flight; ENOTFOUND if path has no policy.
func (m *Machine) RotateNow(ctx context.Context, path, reason string) (*Rotation, error) {
	p, err := m.Store.Policy(ctx, path)
	if err != nil {
		return nil, err
	}
	r, err := m.Start(ctx, p, reason)
	if err != nil {
		return nil, err
	}
	return m.Advance(ctx, r.ID)
}

// Resume advances every in-flight rotation as far as it can go now: the
// thing to call at start-up after a crash. It returns the first error.
func (m *Machine) Resume(ctx context.Context) error {
	rs, err := m.Store.InFlight(ctx)
	if err != nil {
		return err
	}
	var first error
	for _, r := range rs {
		if _, err := m.Advance(ctx, r.ID); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Advance runs rotation id's steps until it is done or failed, must wait
// (grace, retry backoff), or a step fails. A failed step is recorded with
// its retry time and returned as the error.
func (m *Machine) Advance(ctx context.Context, id string) (*Rotation, error) {
	// Another runner in this process (the scheduler, a rotate now) may be
	// advancing it: then wait for it, so callers see where it got to and
	// not a step it is still running.
	leave, err := m.enter(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if leave == nil {
		return m.Store.Rotation(ctx, id)
	}
	defer leave()

	// Another server may be running it: wait for its claim, then read
	// where it got to.
	ctx, release, err := m.claim(ctx, id)
	if err != nil {
		return nil, err
	}
	defer release()
	r, err := m.Store.Rotation(ctx, id)
	if err != nil {
		return nil, err
	}
	for r.Step.InFlight() && !m.now().Before(r.NextAt) {
		if err := m.step(ctx, r); err != nil {
			if errors.Is(err, errCrashed) || ctx.Err() != nil {
				return r, err
			}
			if errors.Is(err, ErrStale) {
				// Another runner advanced it; report its view.
				fresh, ferr := m.Store.Rotation(ctx, id)
				if ferr != nil {
					return r, ferr
				}
				return fresh, nil
			}
			return r, m.fail(ctx, r, err)
		}
	}
	return r, nil
}

// claim takes the store's claim on rotation id when the machine has a
// Claimer; the returned context ends if the claim is lost.
func (m *Machine) claim(ctx context.Context, id string) (context.Context, func(), error) {
	if m.Claims == nil {
		return ctx, func() {}, nil
	}
	return m.Claims.ClaimRotation(ctx, id)
}

func (m *Machine) hit(point string) error {
	if m.crash != nil && m.crash(point) {
		return errCrashed
	}
	return nil
}

// request loads the values a rotator needs for r.
func (m *Machine) request(ctx context.Context, r *Rotation) (*Request, error) {
	req := &Request{RotationID: r.ID, Path: r.Path, Config: r.Config,
		CurrentVersion: r.CurrentVersion, PendingVersion: r.PendingVersion}
	if r.CurrentVersion != 0 {
		v, err := m.Secrets.Version(ctx, r.Path, r.CurrentVersion)
		if err != nil {
			return nil, fmt.Errorf("read version %d: %w", r.CurrentVersion, err)
		}
		req.Current = v.Value
	}
	if r.PendingVersion != 0 {
		v, err := m.Secrets.Version(ctx, r.Path, r.PendingVersion)
		if err != nil {
			return nil, fmt.Errorf("read version %d: %w", r.PendingVersion, err)
		}
		req.Pending = v.Value
	}
	return req, nil
}

// step runs r's current step and records the next one.
func (m *Machine) step(ctx context.Context, r *Rotation) error {
	rot, ok := m.Rotators[r.Rotator]
	if !ok {
		return errInvalid("unknown rotator %q", r.Rotator)
	}
	req, err := m.request(ctx, r)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, m.StepTimeout)
	defer cancel()
	step := r.Step
	var next Step
	switch step {
	case StepCreate:
		// A crash after storing the value but before recording the step
		// leaves our PENDING version behind: adopt it rather than create a
		// second value upstream.
		v, err := m.Secrets.Labeled(ctx, r.Path, LabelPending)
		switch {
		case err == nil && v.RotationID == r.ID:
			r.PendingVersion = v.Number
		case err == nil || tokenward.ErrorCode(err) == tokenward.ENOTFOUND:
			value, err := rot.Create(sctx, req)
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
			if len(value) == 0 {
				return fmt.Errorf("create: rotator %s returned an empty value", r.Rotator)
			}
			if err := m.hit("create:made"); err != nil {
				return err
			}
			n, err := m.Secrets.PutPending(ctx, r.Path, r.ID, value)
			if err != nil {
				return fmt.Errorf("store pending version: %w", err)
			}
			r.PendingVersion = n
		default:
			return fmt.Errorf("read pending version: %w", err)
		}
		next = StepSet
	case StepSet:
		if err := rot.Set(sctx, req); err != nil {
			return fmt.Errorf("set: %w", err)
		}
		next = StepTest
	case StepTest:
		if err := rot.Test(sctx, req); err != nil {
			return fmt.Errorf("test: %w", err)
		}
		next = StepFinish
	case StepFinish:
		// Someone wrote a new value since the rotation started: promoting
		// ours would demote theirs, and revoke would miss it. Fail for
		// good (a retry would find the same): the rollback leaves their
		// value CURRENT.
		switch cur, err := m.Secrets.Labeled(ctx, r.Path, LabelCurrent); {
		case err != nil && tokenward.ErrorCode(err) != tokenward.ENOTFOUND:
			return fmt.Errorf("read current version: %w", err)
		case err == nil && cur.Number != r.CurrentVersion && cur.Number != r.PendingVersion:
			return Permanent(tokenward.Errorf(tokenward.ECONFLICT, "CURRENT of %s changed during the rotation (now version %d)", tokenward.Printable(r.Path), cur.Number))
		}
		if err := m.Secrets.Promote(ctx, r.Path, r.PendingVersion); err != nil {
			return fmt.Errorf("finish: %w", err)
		}
		next = StepRevoke
		r.NextAt = m.now().Add(r.Grace)
	case StepRevoke:
		// Never revoke what is CURRENT: after a rollback (or a crash in
		// the middle of one) the old version is the working one again.
		switch cur, err := m.Secrets.Labeled(ctx, r.Path, LabelCurrent); {
		case err != nil:
			return fmt.Errorf("read current version: %w", err)
		case r.CurrentVersion != 0 && cur.Number == r.CurrentVersion:
			return m.rolledBack(ctx, r)
		}
		if r.CurrentVersion != 0 {
			if err := rot.Revoke(sctx, req); err != nil {
				return fmt.Errorf("revoke previous: %w", err)
			}
			if err := m.hit("revoke:revoked"); err != nil {
				return err
			}
			if err := m.Secrets.Unlabel(ctx, r.Path, LabelPrevious, r.CurrentVersion); err != nil {
				return fmt.Errorf("unlabel previous: %w", err)
			}
		}
		next = StepDone
		r.FinishedAt = m.now()
	default:
		return errInvalid("rotation %s has unknown step %q", r.ID, step)
	}
	if err := m.hit(string(step) + ":done"); err != nil {
		return err
	}
	r.Step, r.Attempt, r.Error, r.UpdatedAt = next, 0, "", m.now()
	if step != StepFinish {
		r.NextAt = time.Time{}
	}
	if err := m.Store.UpdateRotation(ctx, r); err != nil {
		return err
	}
	m.log().Info("rotation step done", "id", r.ID, "secret", r.Path, "step", string(step), "next", string(next))
	return m.hit(string(step) + ":recorded")
}

// Rollback undoes the finished rotation of path during its grace period:
// PREVIOUS becomes CURRENT again, the new value is discarded upstream (if
// the rotator can) and is not revoked later. ENOTFOUND when path has no
// rotation waiting for grace to end.
func (m *Machine) Rollback(ctx context.Context, path string) (*Rotation, error) {
	rs, err := m.Store.InFlight(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Path != path {
			continue
		}
		ctx, release, err := m.claim(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		defer release()
		if r, err = m.Store.Rotation(ctx, r.ID); err != nil { // as the last runner left it
			return nil, err
		}
		if !r.Step.InFlight() {
			break
		}
		if r.Step != StepRevoke || r.CurrentVersion == 0 {
			return nil, tokenward.Errorf(tokenward.ECONFLICT, "the rotation of %s is at step %s; only a finished rotation within grace can be rolled back", tokenward.Printable(path), r.Step)
		}
		if err := m.Secrets.Restore(ctx, path, r.CurrentVersion); err != nil {
			return nil, err
		}
		if err := m.hit("rollback:restored"); err != nil {
			return r, err
		}
		return r, m.rolledBack(ctx, r)
	}
	return nil, errNotFound("%s has no rotation within grace to roll back", tokenward.Printable(path))
}

// Cancel ends rotation id before it is done (its secret is going away,
// e.g. its environment retires). Before finish it rolls back as after its
// last failed attempt: the PENDING value is discarded upstream (if the
// rotator can) and dropped, CURRENT untouched. Once the new value is
// CURRENT (within grace) the labels stay as they are, the new value in use
// and PREVIOUS the old one, which is never revoked: it only stops. The
// rotation is recorded failed with "cancelled: reason". A rotation no
// longer in flight is returned as it is, with cancelled false.
func (m *Machine) Cancel(ctx context.Context, id, reason string) (r *Rotation, cancelled bool, err error) {
	// No runner of this process, nor (with Claims) of another server, is
	// in the middle of one of its steps meanwhile.
	leave, err := m.enter(ctx, id, true)
	if err != nil {
		return nil, false, err
	}
	defer leave()
	ctx, release, err := m.claim(ctx, id)
	if err != nil {
		return nil, false, err
	}
	defer release()
	if r, err = m.Store.Rotation(ctx, id); err != nil || !r.Step.InFlight() {
		return r, false, err
	}
	cur := 0
	switch v, err := m.Secrets.Labeled(ctx, r.Path, LabelCurrent); {
	case err == nil:
		cur = v.Number
	case tokenward.ErrorCode(err) != tokenward.ENOTFOUND:
		return r, false, fmt.Errorf("cancel rotation of %s: read current version: %w", tokenward.Printable(r.Path), err)
	}
	switch {
	case r.PendingVersion != 0 && cur == r.PendingVersion:
		// Finished (or promoted before a crash): the new value is the
		// one in use and stays CURRENT, PREVIOUS the old one, which is
		// never revoked. A restore brings both back as they were.
	case r.Step == StepRevoke:
		if cur == r.CurrentVersion {
			m.discard(ctx, r) // rolled back already
		}
	default:
		m.rollback(ctx, r)
	}
	now := m.now()
	r.Step, r.Error, r.FinishedAt, r.UpdatedAt, r.NextAt = StepFailed, "cancelled: "+reason, now, now, time.Time{}
	if err := m.Store.UpdateRotation(ctx, r); err != nil {
		return r, false, err
	}
	m.log().Info("rotation cancelled", "id", r.ID, "secret", r.Path, "reason", reason)
	return r, true, nil
}

// enter marks rotation id as advanced by the caller until leave is
// called. When another runner of this process has it, enter waits for
// that runner to leave; then, with takeOver, it enters in its turn, and
// without, it returns a nil leave (the other runner did the work).
func (m *Machine) enter(ctx context.Context, id string, takeOver bool) (leave func(), err error) {
	for {
		m.mu.Lock()
		if m.running == nil {
			m.running = map[string]chan struct{}{}
		}
		ch, busy := m.running[id]
		if !busy {
			done := make(chan struct{})
			m.running[id] = done
			m.mu.Unlock()
			return func() {
				m.mu.Lock()
				delete(m.running, id)
				m.mu.Unlock()
				close(done)
			}, nil
		}
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !takeOver {
			return nil, nil
		}
	}
}

// discard asks the rotator, if it can, to undo the new value of r, which
// will never be (or is no longer) CURRENT.
func (m *Machine) discard(ctx context.Context, r *Rotation) {
	if d, ok := m.Rotators[r.Rotator].(Discarder); ok {
		if req, err := m.request(ctx, r); err == nil {
			if err := d.Discard(ctx, req); err != nil {
				m.log().Warn("discard rolled-back value failed", "id", r.ID, "secret", r.Path, "error", err.Error())
			}
		}
	}
}

// rolledBack ends a rotation whose old version is CURRENT again.
func (m *Machine) rolledBack(ctx context.Context, r *Rotation) error {
	m.discard(ctx, r)
	now := m.now()
	r.Step, r.Error, r.FinishedAt, r.UpdatedAt, r.NextAt = StepFailed, "rolled back to the previous version", now, now, time.Time{}
	if err := m.Store.UpdateRotation(ctx, r); err != nil {
		return err
	}
	m.log().Info("rotation rolled back", "id", r.ID, "secret", r.Path)
	return nil
}

// fail records a failed step: a retry with backoff, or, after MaxAttempts
// or at once for a Permanent cause, the end of the rotation: a rollback
// that leaves CURRENT as it was (before finish), or, at revoke, the old
// value left valid.
func (m *Machine) fail(ctx context.Context, r *Rotation, cause error) error {
	r.Attempt++
	permanent := IsPermanent(cause)
	if permanent {
		r.Error = fmt.Sprintf("%s (attempt %d, permanent: not retried)", cause.Error(), r.Attempt)
	} else {
		r.Error = fmt.Sprintf("%s (attempt %d)", cause.Error(), r.Attempt)
	}
	r.UpdatedAt = m.now()
	m.Failures.Add(1)
	if !permanent && r.Attempt < m.MaxAttempts {
		r.NextAt = r.UpdatedAt.Add(m.backoff(r.Attempt))
	} else {
		if r.Step != StepRevoke {
			m.rollback(ctx, r)
		}
		r.Step, r.FinishedAt, r.NextAt = StepFailed, r.UpdatedAt, time.Time{}
	}
	m.log().Warn("rotation step failed", "id", r.ID, "secret", r.Path, "step", string(r.Step),
		"attempt", r.Attempt, "permanent", permanent, "error", r.Error)
	if m.Alert != nil {
		m.Alert(ctx, r)
	}
	if err := m.Store.UpdateRotation(ctx, r); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// rollback drops this rotation's PENDING version. CURRENT was never moved
// (finish is the only step that moves it), so the working value stays.
func (m *Machine) rollback(ctx context.Context, r *Rotation) {
	if r.PendingVersion == 0 {
		return
	}
	if d, ok := m.Rotators[r.Rotator].(Discarder); ok {
		if req, err := m.request(ctx, r); err == nil {
			if err := d.Discard(ctx, req); err != nil {
				m.log().Warn("discard pending value failed", "id", r.ID, "secret", r.Path, "error", err.Error())
			}
		}
	}
	if err := m.Secrets.Unlabel(ctx, r.Path, LabelPending, r.PendingVersion); err != nil {
		m.log().Warn("unlabel pending failed", "id", r.ID, "secret", r.Path, "error", err.Error())
	}
}

func (m *Machine) backoff(attempt int) time.Duration {
	d := m.Backoff
	for i := 1; i < attempt && d < m.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, m.MaxBackoff)
}
