// Package dynamic makes credentials that exist for one job: a dynamic
// source (a PostgreSQL database, say) hands every reader a new role with a
// lease, tied to the token that asked, revoked when the job ends, the
// token is revoked or expires, or the lease runs out. Revocation is
// retried with backoff until it succeeds, and a sweep (run once across the
// servers, by the leader) finds whatever was left: expired leases, leases
// of revoked tokens, and roles whose maker died before recording them
// (every lease is recorded before its role is created).
package dynamic

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// Kind makes and removes the credentials of one kind of dynamic source.
// Every method may be repeated; Revoke of a credential that is gone
// already succeeds. Errors never hold a credential; a target that cannot
// be reached is EUNAVAILABLE.
type Kind interface {
	// Validate checks a source's config.
	Validate(config map[string]string) error
	// References are the secret paths config reads (an admin URL): whoever
	// writes the source must be able to read them.
	References(config map[string]string) []string
	// Create makes the credential of l (its Role, valid until ExpiresAt).
	Create(ctx context.Context, src *tokenward.DynamicSource, l *tokenward.Lease) (*Credential, error)
	// Renew makes the credential of l valid until l.ExpiresAt.
	Renew(ctx context.Context, src *tokenward.DynamicSource, l *tokenward.Lease) error
	// Revoke removes the credential of l and ends its sessions.
	Revoke(ctx context.Context, src *tokenward.DynamicSource, l *tokenward.Lease) error
}

// Checker is a Kind that can prove a source works before it is stored:
// PutSource calls Check unless told to skip it. An error is EINVALID when
// the target refused the source's settings, EUNAVAILABLE when it could
// not be reached; Check leaves nothing behind on the target.
type Checker interface {
	Check(ctx context.Context, src *tokenward.DynamicSource) error
}

// Credential is what a lease's holder gets, once: it is never stored.
type Credential struct {
	User     string
	Password string
	// Value is the credential as one string: a connection URL, or JSON.
	Value string
}

// Store is what the engine needs of storage: sources and their leases
// (PutDynamicSource refuses a stored secret's path).
type Store interface {
	tokenward.LeaseStore
}

// Engine runs dynamic sources and their leases. Create it with New.
type Engine struct {
	Store Store
	Kinds map[string]Kind
	// Now is the clock, replaceable in tests.
	Now    func() time.Time
	Logger *slog.Logger
	// Limits caps live leases per source (a source's MaxLeases wins) and
	// per token.
	Limits tokenward.LeaseLimits
	// CreateTimeout bounds the making, renewal or revocation of one
	// credential, and a source's check; StaleAfter (longer) is when a lease still 'creating'
	// is taken for an orphan of a maker that died.
	CreateTimeout, StaleAfter time.Duration
	// Backoff is the first delay before a failed revocation is tried
	// again; it doubles up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// SweepBatch bounds the leases one sweep looks at; SweepConcurrency
	// the revocations it runs at once.
	SweepBatch, SweepConcurrency int
	// Retain is how long revoked leases stay listed before the sweep
	// prunes them.
	Retain time.Duration
	// Record, when set, audits what the server does on its own authority:
	// revocations by the sweep and for revoked tokens.
	Record func(ctx context.Context, e *tokenward.AuditEntry) error
	// AfterCreate, when set, is called after a credential is made and
	// before its lease is marked active (tests crash there).
	AfterCreate func(l *tokenward.Lease)
	// Retired, when set, refuses a source's write or a lease in a retired
	// environment (core.Core.RefuseRetired): nothing new comes alive in a
	// scope that was decommissioned.
	Retired func(ctx context.Context, project, env string) error
}

// Defaults.
const (
	DefaultMaxLeasesPerSource = 1000
	DefaultMaxLeasesPerToken  = 100
	MaxTTL                    = tokenward.MaxLeaseTTL
	MaxSourceLeases           = tokenward.MaxSourceLeases
)

// New returns an engine with defaults.
func New(store Store, kinds map[string]Kind) *Engine {
	return &Engine{
		Store: store, Kinds: kinds, Now: time.Now, Logger: slog.New(slog.DiscardHandler),
		Limits:        tokenward.LeaseLimits{PerSource: DefaultMaxLeasesPerSource, PerToken: DefaultMaxLeasesPerToken},
		CreateTimeout: 30 * time.Second, StaleAfter: 2 * time.Minute,
		Backoff: time.Second, MaxBackoff: 5 * time.Minute,
		SweepBatch: 500, SweepConcurrency: 8, Retain: 7 * 24 * time.Hour,
	}
}

func splitPath(path string) (string, string, string, error) {
	parts := strings.Split(path, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", tokenward.Errorf(tokenward.EINVALID, "dynamic source %q: want project/env/name", tokenward.Printable(path))
	}
	return parts[0], parts[1], parts[2], nil
}

// validPath checks a source's path: a project, an environment and a
// secret name (the source's name is an environment variable name for run
// and export).
func validPath(project, env, name string) error {
	for _, err := range []error{tokenward.ValidateProjectName(project), tokenward.ValidateEnvName(env), tokenward.ValidateSecretName(name)} {
		if err != nil {
			return err
		}
	}
	return nil
}

func require(tok *tokenward.Token, a tokenward.Action, project, env, name string) error {
	if !tok.Grants.Allows(a, project, env, name) {
		return tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: %s on %s/%s/%s", a, project, env, name)
	}
	return nil
}

func (e *Engine) kind(name string) (Kind, error) {
	k := e.Kinds[name]
	if k == nil {
		return nil, tokenward.Errorf(tokenward.EINVALID, "dynamic source kind %q is not supported (have: postgres)", tokenward.Printable(name))
	}
	return k, nil
}

// PutSource creates or replaces a source. It needs admin on the source's
// path and read on every secret its config reads (an admin URL must not
// be usable by someone who could not read it). A kind that is a Checker
// checks the source against its target first, unless skipCheck (the
// target is not reachable from the server yet). The store refuses a new
// kind or config while a lease of the source is live (ECONFLICT): its
// role would be revoked elsewhere, or otherwise, and stay.
func (e *Engine) PutSource(ctx context.Context, tok *tokenward.Token, src *tokenward.DynamicSource, skipCheck bool) (*tokenward.DynamicSource, error) {
	if err := validPath(src.Project, src.Env, src.Name); err != nil {
		return nil, err
	}
	if err := require(tok, tokenward.ActionAdmin, src.Project, src.Env, src.Name); err != nil {
		return nil, err
	}
	if err := e.refuseRetired(ctx, src.Project, src.Env); err != nil {
		return nil, err
	}
	k, err := e.kind(src.Kind)
	if err != nil {
		return nil, err
	}
	if src.Config == nil {
		src.Config = map[string]string{}
	}
	if err := k.Validate(src.Config); err != nil {
		return nil, err
	}
	for _, ref := range k.References(src.Config) {
		p, en, n, err := splitPath(ref)
		if err == nil {
			err = validPath(p, en, n)
		}
		if err != nil {
			return nil, err
		}
		if err := require(tok, tokenward.ActionRead, p, en, n); err != nil {
			return nil, err
		}
		if p != src.Project {
			return nil, tokenward.Errorf(tokenward.EINVALID, "secret %s: a dynamic source reads secrets of its own project (%s) only", tokenward.Printable(ref), src.Project)
		}
	}
	switch {
	case src.TTL <= 0:
		return nil, tokenward.Errorf(tokenward.EINVALID, "ttl must be positive")
	case src.MaxTTL == 0:
		src.MaxTTL = src.TTL
	}
	switch {
	case src.MaxTTL < src.TTL:
		return nil, tokenward.Errorf(tokenward.EINVALID, "max ttl (%s) must not be shorter than ttl (%s)", src.MaxTTL, src.TTL)
	case src.MaxTTL > MaxTTL:
		return nil, tokenward.Errorf(tokenward.EINVALID, "max ttl must be at most %s", MaxTTL)
	case src.MaxLeases < 0 || src.MaxLeases > MaxSourceLeases:
		return nil, tokenward.Errorf(tokenward.EINVALID, "max leases must be from 0 (the server's default) to %d", MaxSourceLeases)
	}
	if c, ok := k.(Checker); ok && !skipCheck {
		cctx, cancel := context.WithTimeout(ctx, e.CreateTimeout)
		err := c.Check(cctx, src)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	now := e.Now().UTC()
	src.CreatedBy, src.CreatedAt, src.UpdatedAt = tok.ID, now, now
	if err := e.Store.PutDynamicSource(ctx, src); err != nil {
		return nil, err
	}
	return e.Store.DynamicSource(ctx, src.Project, src.Env, src.Name)
}

// Source returns a source tok may read.
func (e *Engine) Source(ctx context.Context, tok *tokenward.Token, project, env, name string) (*tokenward.DynamicSource, error) {
	if err := require(tok, tokenward.ActionRead, project, env, name); err != nil {
		return nil, err
	}
	return e.Store.DynamicSource(ctx, project, env, name)
}

// Sources lists the sources tok may read, by path, under prefix ("" all).
func (e *Engine) Sources(ctx context.Context, tok *tokenward.Token, prefix string) ([]*tokenward.DynamicSource, error) {
	all, err := e.Store.DynamicSources(ctx)
	if err != nil {
		return nil, err
	}
	out := []*tokenward.DynamicSource{}
	for _, s := range all {
		if tokenward.PathUnder(s.Path(), prefix) && tok.Grants.Allows(tokenward.ActionRead, s.Project, s.Env, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

// DeleteSource deletes a source without live leases (admin).
func (e *Engine) DeleteSource(ctx context.Context, tok *tokenward.Token, project, env, name string) error {
	if err := require(tok, tokenward.ActionAdmin, project, env, name); err != nil {
		return err
	}
	return e.Store.DeleteDynamicSource(ctx, project, env, name)
}

// newLeaseID returns a lease id and its role name, which share their
// random part: a role found in the database (tw_…) names its lease.
func newLeaseID() (id, role string) {
	r := strings.ToLower(rand.Text())
	return "lease_" + r, RolePrefix + r
}

// RolePrefix starts every role a lease makes.
const RolePrefix = "tw_"

// jobOf names a just-in-time token's CI job, for the audit trail and
// lease lists.
func jobOf(tok *tokenward.Token) string {
	repo, run := tok.CI["repository"], tok.CI["run_id"]
	switch {
	case repo != "" && run != "":
		return repo + "#" + run
	case repo != "":
		return repo
	}
	return run
}

// Lease makes a credential from the source at project/env/name for tok
// (which needs read on it). The lease is recorded first, in state
// creating, so a crash after the role exists leaves a row the sweep
// finds; it expires after the source's TTL and never outlives tok.
func (e *Engine) Lease(ctx context.Context, tok *tokenward.Token, project, env, name string) (*tokenward.Lease, *Credential, error) {
	if err := require(tok, tokenward.ActionRead, project, env, name); err != nil {
		return nil, nil, err
	}
	src, err := e.Store.DynamicSource(ctx, project, env, name)
	if err != nil {
		return nil, nil, err
	}
	// After the lookup: a path that is no source stays not found (secret
	// get tries a source when no secret has the path).
	if err := e.refuseRetired(ctx, project, env); err != nil {
		return nil, nil, err
	}
	k, err := e.kind(src.Kind)
	if err != nil {
		return nil, nil, err
	}
	now := e.Now().UTC()
	id, role := newLeaseID()
	l := &tokenward.Lease{ID: id, Project: project, Env: env, Name: name, Kind: src.Kind, Role: role, TokenID: tok.ID, Job: jobOf(tok),
		State: tokenward.LeaseCreating, CreatedAt: now, ExpiresAt: now.Add(src.TTL), MaxExpiresAt: now.Add(src.MaxTTL)}
	if !tok.ExpiresAt.IsZero() {
		l.ExpiresAt = minTime(l.ExpiresAt, tok.ExpiresAt)
		l.MaxExpiresAt = minTime(l.MaxExpiresAt, tok.ExpiresAt)
	}
	limits := e.Limits
	if src.MaxLeases > 0 {
		limits.PerSource = src.MaxLeases
	}
	if err := e.Store.CreateLease(ctx, l, limits); err != nil {
		return nil, nil, err
	}
	// The source as it is now that the lease is recorded: its kind and
	// config no longer change while the lease lives (PutDynamicSource),
	// so the credential is made where it will be revoked. The one read
	// above may be older than a replacement made in between.
	src, err = e.Store.DynamicSource(ctx, project, env, name)
	if err == nil && src.Kind != l.Kind {
		err = tokenward.Errorf(tokenward.ECONFLICT, "dynamic source %s was replaced while the lease was made; ask again", l.Source())
	}
	if err != nil {
		e.revokeMade(ctx, l, "creation failed")
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.CreateTimeout)
	defer cancel()
	cred, err := k.Create(cctx, src, l)
	if err != nil {
		// The statement may have committed before the connection broke.
		e.revokeMade(ctx, l, "creation failed")
		return nil, nil, err
	}
	if e.AfterCreate != nil {
		e.AfterCreate(l)
	}
	active := *l
	active.State = tokenward.LeaseActive
	if err := e.Store.UpdateLease(ctx, &active, tokenward.LeaseCreating); err != nil {
		// The sweep took the lease for an orphan (this server was too
		// slow), or the store failed: the credential is not handed out.
		e.revokeMade(ctx, l, "creation not recorded")
		return nil, nil, err
	}
	return &active, cred, nil
}

// revokeMade revokes l, whose credential this server made (or may have
// made) after recording it. A revoker that took the lease while it was
// still creating (a token's revocation, a prefix, the sweep) found no
// credential yet and recorded it revoked: the credential is removed once
// more here (Revoke is idempotent), and if that fails the lease goes back
// to revoking, for the sweep to retry.
func (e *Engine) revokeMade(ctx context.Context, l *tokenward.Lease, reason string) {
	ctx = context.WithoutCancel(ctx)
	got, err := e.revoke(ctx, l, reason)
	if err != nil || got == nil || got.State != tokenward.LeaseRevoked {
		return // revoking: the sweep retries
	}
	err = e.revokeCredential(ctx, got)
	if err == nil {
		return
	}
	next := *got
	next.State, next.RevokedAt, next.Attempts, next.Error = tokenward.LeaseRevoking, time.Time{}, 1, tokenward.ErrorMessage(err)
	next.NextAttemptAt = e.Now().UTC().Add(e.backoff(next.Attempts))
	if uerr := e.Store.UpdateLease(ctx, &next, tokenward.LeaseRevoked); uerr != nil {
		e.Logger.Error("a lease's credential made after its revocation may remain", "lease", l.ID, "role", l.Role,
			"error", tokenward.ErrorMessage(err), "store_error", tokenward.ErrorMessage(uerr))
		return
	}
	e.Logger.Warn("lease revocation failed; will retry", "lease", l.ID, "source", l.Source(), "role", l.Role,
		"attempt", next.Attempts, "next_at", next.NextAttemptAt, "error", next.Error)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// mayManage reports whether tok may see, renew and revoke l: its own
// lease, or one under its revoke (or admin) grant.
func mayManage(tok *tokenward.Token, l *tokenward.Lease) bool {
	return l.TokenID == tok.ID || tok.Grants.Allows(tokenward.ActionRevoke, l.Project, l.Env, l.Name)
}

// Leases lists the leases f selects that tok may manage.
func (e *Engine) Leases(ctx context.Context, tok *tokenward.Token, f tokenward.LeaseFilter) ([]*tokenward.Lease, error) {
	all, err := e.Store.Leases(ctx, f)
	if err != nil {
		return nil, err
	}
	out := []*tokenward.Lease{}
	for _, l := range all {
		if mayManage(tok, l) {
			out = append(out, l)
		}
	}
	return out, nil
}

// LeaseInfo returns one lease tok may manage.
func (e *Engine) LeaseInfo(ctx context.Context, tok *tokenward.Token, id string) (*tokenward.Lease, error) {
	l, err := e.Store.Lease(ctx, id)
	if err != nil {
		return nil, err
	}
	if !mayManage(tok, l) {
		// not found, not forbidden: lease ids are not for probing
		return nil, tokenward.Errorf(tokenward.ENOTFOUND, "lease %s not found", tokenward.Printable(id))
	}
	return l, nil
}

// Renew extends a live lease by increment (0: the source's TTL) from now.
// A renewal that would take it past its max TTL (or its token's expiry)
// is capped there, as Vault caps one, and says so in a warning: a job that
// needs longer asks for a new lease. At its max TTL already, the lease is
// returned as it is, with the warning.
func (e *Engine) Renew(ctx context.Context, tok *tokenward.Token, id string, increment time.Duration) (l *tokenward.Lease, warnings []string, err error) {
	l, err = e.LeaseInfo(ctx, tok, id)
	if err != nil {
		return nil, nil, err
	}
	if l.State != tokenward.LeaseActive {
		return nil, nil, tokenward.Errorf(tokenward.ECONFLICT, "lease %s is %s; only an active lease renews", l.ID, l.State)
	}
	src, err := e.Store.DynamicSource(ctx, l.Project, l.Env, l.Name)
	if err != nil {
		return nil, nil, err
	}
	k, err := e.kind(src.Kind)
	if err != nil {
		return nil, nil, err
	}
	if increment <= 0 {
		increment = src.TTL
	}
	now := e.Now().UTC()
	if !now.Before(l.ExpiresAt) {
		return nil, nil, tokenward.Errorf(tokenward.ECONFLICT, "lease %s expired at %s", l.ID, l.ExpiresAt.Format(time.RFC3339))
	}
	next := *l
	next.ExpiresAt = now.Add(increment)
	if next.ExpiresAt.After(l.MaxExpiresAt) {
		next.ExpiresAt = l.MaxExpiresAt
		warnings = []string{MaxTTLWarning(l)}
	}
	if next.ExpiresAt.Equal(l.ExpiresAt) {
		return l, warnings, nil // nothing to move
	}
	if err := e.Store.UpdateLease(ctx, &next, tokenward.LeaseActive); err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.CreateTimeout)
	defer cancel()
	if err := k.Renew(cctx, src, &next); err != nil {
		// The role keeps its old expiry: so does the record.
		if uerr := e.Store.UpdateLease(ctx, l, tokenward.LeaseActive); uerr != nil {
			e.Logger.Warn("lease renewal failed and its record keeps the new expiry", "lease", l.ID, "error", tokenward.ErrorMessage(uerr))
		}
		return nil, nil, err
	}
	return &next, warnings, nil
}

// MaxTTLWarning is the warning of a renewal capped at l's max TTL.
func MaxTTLWarning(l *tokenward.Lease) string {
	return "lease " + l.ID + " is renewed only up to its max ttl, " + l.MaxExpiresAt.Format(time.RFC3339) +
		"; a job that needs longer asks for a new lease"
}

// Revoke revokes a lease tok may manage. A revocation the target refused
// (the database is down) leaves the lease revoking, retried by the sweep;
// that is not an error here.
func (e *Engine) Revoke(ctx context.Context, tok *tokenward.Token, id string) (*tokenward.Lease, error) {
	l, err := e.LeaseInfo(ctx, tok, id)
	if err != nil {
		return nil, err
	}
	return e.revoke(ctx, l, "requested by "+tok.ID)
}

// RevokePrefix revokes every live lease under prefix (whole segments:
// tokenward.PathUnder) that tok may manage (an incident: acme/prod/db, or
// acme/prod).
func (e *Engine) RevokePrefix(ctx context.Context, tok *tokenward.Token, prefix string) ([]*tokenward.Lease, error) {
	if prefix == "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "a prefix is required: project, project/env or project/env/name")
	}
	ls, err := e.Leases(ctx, tok, tokenward.LeaseFilter{Prefix: prefix, Live: true})
	if err != nil {
		return nil, err
	}
	return e.revokeAll(ctx, ls, "revoked by prefix "+prefix+" by "+tok.ID), nil
}

func (e *Engine) refuseRetired(ctx context.Context, project, env string) error {
	if e.Retired == nil {
		return nil
	}
	return e.Retired(ctx, project, env)
}

// RevokeScope revokes, on the server's authority, every live lease of the
// sources in a retired project or environment (env "": the whole
// project), and returns a line for each; with dryRun it only lists them.
// It is a core.RetireHook. A revocation that fails is retried by the sweep.
func (e *Engine) RevokeScope(ctx context.Context, project, env string, dryRun bool) ([]string, error) {
	scope := project
	if env != "" {
		scope += "/" + env
	}
	ls, err := e.Store.Leases(ctx, tokenward.LeaseFilter{Prefix: scope + "/", Live: true})
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range ls {
		lines = append(lines, "lease "+l.ID+" of dynamic source "+l.Source())
	}
	if !dryRun {
		e.revokeAll(ctx, ls, "retired "+scope)
	}
	return lines, nil
}

// DeleteScope deletes, on the server's authority, the sources of an
// environment whose archive was purged (its retention over): kept while
// it could be restored, they would lease again once it is gone. It is a
// core.Monitoring purge hook. A source with a lease still being revoked
// (its database down since the retirement) stays, and the error says so.
func (e *Engine) DeleteScope(ctx context.Context, project, env string) error {
	all, err := e.Store.DynamicSources(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, src := range all {
		if src.Project != project || src.Env != env {
			continue
		}
		if err := e.Store.DeleteDynamicSource(ctx, project, env, src.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if e.Record != nil {
			entry := &tokenward.AuditEntry{Time: e.Now().UTC(), Action: "dynamic.delete", Resource: src.Path(), Outcome: tokenward.OutcomeAllowed,
				Reason: "environment purged"}
			if err := e.Record(ctx, entry); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// RevokeToken revokes, on the server's authority, every live lease of a
// token that was revoked.
func (e *Engine) RevokeToken(ctx context.Context, tokenID string) (int, error) {
	ls, err := e.Store.Leases(ctx, tokenward.LeaseFilter{TokenID: tokenID, Live: true})
	if err != nil {
		return 0, err
	}
	return tokenward.RevokedLeases(e.revokeAll(ctx, ls, "token revoked")), nil
}

// revokeAll revokes ls, SweepConcurrency at a time, and returns their
// latest records.
func (e *Engine) revokeAll(ctx context.Context, ls []*tokenward.Lease, reason string) []*tokenward.Lease {
	out := make([]*tokenward.Lease, len(ls))
	sem := make(chan struct{}, max(e.SweepConcurrency, 1))
	var wg sync.WaitGroup
	for i, l := range ls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r := reason
			if reason == "" {
				r = sweepReason(l, e.Now())
			}
			got, _ := e.revoke(ctx, l, r)
			if got == nil {
				got = l
			}
			out[i] = got
		})
	}
	wg.Wait()
	return out
}

// revoke marks l revoking (recording why, before anything is removed)
// and makes one attempt. Errors are the store's; a failed attempt is
// recorded on the lease and retried by the sweep.
func (e *Engine) revoke(ctx context.Context, l *tokenward.Lease, reason string) (*tokenward.Lease, error) {
	ctx = context.WithoutCancel(ctx) // a client that hangs up does not stop a revocation
	for tries := 0; l.State == tokenward.LeaseActive || l.State == tokenward.LeaseCreating; tries++ {
		next := *l
		next.State, next.Reason, next.Attempts, next.NextAttemptAt, next.Error = tokenward.LeaseRevoking, reason, 0, e.Now().UTC(), ""
		err := e.Store.UpdateLease(ctx, &next, l.State)
		if err == nil {
			l = &next
			break
		}
		if tokenward.ErrorCode(err) != tokenward.ECONFLICT || tries == 3 {
			return l, err
		}
		// Renewed, or marked by another revoker meanwhile: look again.
		if l, err = e.Store.Lease(ctx, l.ID); err != nil {
			return nil, err
		}
	}
	if l.State == tokenward.LeaseRevoked {
		return l, nil
	}
	return e.attempt(ctx, l)
}

// attempt tries to revoke a lease in state revoking once and records the
// outcome: revoked, or the error and when to try again.
func (e *Engine) attempt(ctx context.Context, l *tokenward.Lease) (*tokenward.Lease, error) {
	err := e.revokeCredential(ctx, l)
	now := e.Now().UTC()
	next := *l
	if err == nil {
		next.State, next.RevokedAt, next.NextAttemptAt, next.Error = tokenward.LeaseRevoked, now, time.Time{}, ""
	} else {
		next.Attempts++
		next.NextAttemptAt = now.Add(e.backoff(next.Attempts))
		next.Error = tokenward.ErrorMessage(err)
		e.Logger.Warn("lease revocation failed; will retry", "lease", l.ID, "source", l.Source(), "role", l.Role,
			"attempt", next.Attempts, "next_at", next.NextAttemptAt, "error", next.Error)
	}
	if uerr := e.Store.UpdateLease(ctx, &next, tokenward.LeaseRevoking); uerr != nil {
		if tokenward.ErrorCode(uerr) == tokenward.ECONFLICT {
			// Another revoker recorded its outcome first.
			return e.Store.Lease(ctx, l.ID)
		}
		return l, uerr
	}
	if err == nil {
		e.record(ctx, &next)
	}
	return &next, nil
}

func (e *Engine) revokeCredential(ctx context.Context, l *tokenward.Lease) error {
	src, err := e.Store.DynamicSource(ctx, l.Project, l.Env, l.Name)
	if err != nil {
		return err
	}
	k, err := e.kind(src.Kind)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, e.CreateTimeout)
	defer cancel()
	return k.Revoke(cctx, src, l)
}

func (e *Engine) backoff(attempts int) time.Duration {
	d := e.Backoff
	for i := 1; i < attempts && d < e.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, e.MaxBackoff)
}

// record audits a finished revocation (the request that asked for it, if
// any, is audited by its transport).
func (e *Engine) record(ctx context.Context, l *tokenward.Lease) {
	if e.Record == nil {
		return
	}
	entry := &tokenward.AuditEntry{Time: e.Now().UTC(), Action: "lease.revoked", Resource: l.Source(), Outcome: tokenward.OutcomeAllowed,
		Reason: l.Reason, Meta: map[string]string{"lease": l.ID, "role": l.Role, "lease_token": l.TokenID, "attempts": strconv.Itoa(l.Attempts + 1)}}
	if l.Job != "" {
		entry.Meta["job"] = l.Job
	}
	if err := e.Record(ctx, entry); err != nil {
		e.Logger.Error("audit a lease revocation", "lease", l.ID, "error", tokenward.ErrorMessage(err))
	}
}

func sweepReason(l *tokenward.Lease, now time.Time) string {
	switch {
	case l.State == tokenward.LeaseCreating:
		return "orphaned creation"
	case !now.Before(l.ExpiresAt):
		return "expired"
	}
	return "token revoked or expired"
}

// Sweep revokes what is due (expired leases, leases of revoked or expired
// tokens, orphaned creations, revocations to retry) and prunes old revoked
// leases. Run it on one server (the leader); a second sweeper would only
// repeat idempotent work. It returns how many leases it revoked.
func (e *Engine) Sweep(ctx context.Context) (int, error) {
	now := e.Now().UTC()
	due, err := e.Store.DueLeases(ctx, now, now.Add(-e.StaleAfter), e.SweepBatch)
	if err != nil {
		return 0, err
	}
	n := tokenward.RevokedLeases(e.revokeAll(ctx, due, ""))
	if e.Retain > 0 {
		if _, err := e.Store.PruneLeases(ctx, now.Add(-e.Retain)); err != nil {
			return n, err
		}
	}
	return n, nil
}

// RunSweeper sweeps every interval until ctx ends.
func (e *Engine) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := e.Sweep(ctx); err != nil && !errors.Is(err, context.Canceled) {
			e.Logger.Warn("lease sweep", "error", tokenward.ErrorMessage(err))
		} else if n > 0 {
			e.Logger.Info("lease sweep", "revoked", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// LiveLeases counts live leases by source path, for the metric.
func (e *Engine) LiveLeases(ctx context.Context) (map[string]int, error) {
	ls, err := e.Store.Leases(ctx, tokenward.LeaseFilter{Live: true})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, l := range ls {
		out[l.Source()]++
	}
	return out, nil
}
