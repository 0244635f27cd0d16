package core

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/rotate"
)

// RotationStore is what rotation needs from storage beyond tokenward.Store:
// rotation records and policies. Staged versions are the Store's
// tokenward.LabelStore power. internal/storetest.RunRotation and RunLabels
// are the contract.
type RotationStore interface {
	rotate.Store
}

// SecretCatalog lists every secret's metadata, for bulk rotation.
type SecretCatalog interface {
	AllSecrets(ctx context.Context) ([]*tokenward.Secret, error)
}

// Rotation is rotation without downtime, wired to the engine: set Core.Rotation
// (NewRotation) to enable it; without it every rotation operation is
// EUNAVAILABLE. Secret values are sealed like every other version.
type Rotation struct {
	Machine   *rotate.Machine
	Scheduler *rotate.Scheduler
	Catalog   SecretCatalog
	// BulkConcurrency bounds a bulk rotation's concurrent rotations when
	// the request does not say (default 4, at most 32).
	BulkConcurrency int
	// BulkJobs keeps the reports of bulk rotations run in the background,
	// read by every server sharing the store; nil: runs are refused.
	BulkJobs rotate.BulkJobStore
}

// RotationSecrets is the sealing-aware adapter rotation runs on: it
// implements rotate.Secrets and rotate.SecretReader over the core's store
// (which must be a tokenward.LabelStore) with values sealed under the
// project's data key and bound to project, environment, name and version.
type RotationSecrets struct {
	c      *Core
	labels tokenward.LabelStore
}

var (
	_ rotate.Secrets      = (*RotationSecrets)(nil)
	_ rotate.SecretReader = (*RotationSecrets)(nil)
)

// RotationSecrets returns the adapter; the core's store must keep labels.
func (c *Core) RotationSecrets() (*RotationSecrets, error) {
	ls, ok := c.Store.(tokenward.LabelStore)
	if !ok {
		return nil, fmt.Errorf("rotation: the store does not keep version labels")
	}
	return &RotationSecrets{c: c, labels: ls}, nil
}

// splitSecretPath parses project/env/name.
func splitSecretPath(p string) (string, string, string, error) {
	parts := strings.Split(p, "/")
	if len(parts) != 3 {
		return "", "", "", tokenward.Errorf(tokenward.EINVALID, "secret path %q: want project/env/NAME", printable(p))
	}
	if err := validPath(parts[0], parts[1], parts[2]); err != nil {
		return "", "", "", err
	}
	return parts[0], parts[1], parts[2], nil
}

// PutPending implements rotate.Secrets.
func (s *RotationSecrets) PutPending(ctx context.Context, p, rotationID string, value []byte) (int, error) {
	project, env, name, err := splitSecretPath(p)
	if err != nil {
		return 0, err
	}
	if len(value) > s.c.MaxValueSize {
		return 0, tokenward.Errorf(tokenward.ETOOLARGE, "the rotator's value is %d bytes; the limit is %d", len(value), s.c.MaxValueSize)
	}
	for attempt := 0; ; attempt++ {
		l, err := s.labels.SecretLabels(ctx, project, env, name)
		if err != nil {
			return 0, err
		}
		n := l.Latest + 1
		ct, err := s.c.sealValue(ctx, project, env, name, n, value)
		if err != nil {
			return 0, err
		}
		err = s.labels.PutPendingVersion(ctx, project, env, name, rotationID,
			&tokenward.SecretVersion{Version: n, CreatedAt: s.c.Now().UTC(), CreatedBy: rotationID, Ciphertext: ct})
		if tokenward.ErrorCode(err) == tokenward.ECONFLICT && attempt < 5 {
			continue // a writer took the number; seal against the next
		}
		return n, err
	}
}

// Labeled implements rotate.Secrets.
func (s *RotationSecrets) Labeled(ctx context.Context, p, label string) (*rotate.Version, error) {
	return s.version(ctx, p, func(l *tokenward.VersionLabels) (int, error) {
		if n := labelVersion(l, label); n != 0 {
			return n, nil
		}
		return 0, tokenward.Errorf(tokenward.ENOTFOUND, "%s has no %s version", p, label)
	})
}

// Version implements rotate.Secrets.
func (s *RotationSecrets) Version(ctx context.Context, p string, n int) (*rotate.Version, error) {
	return s.version(ctx, p, func(*tokenward.VersionLabels) (int, error) { return n, nil })
}

// version reads the version of p that pick chooses from its labels, with
// its value and the labels it carries.
func (s *RotationSecrets) version(ctx context.Context, p string, pick func(*tokenward.VersionLabels) (int, error)) (*rotate.Version, error) {
	project, env, name, err := splitSecretPath(p)
	if err != nil {
		return nil, err
	}
	l, err := s.labels.SecretLabels(ctx, project, env, name)
	if err != nil {
		return nil, err
	}
	n, err := pick(l)
	if err != nil {
		return nil, err
	}
	sv, err := s.c.Store.SecretVersion(ctx, project, env, name, n)
	if err != nil {
		return nil, err
	}
	value, err := s.c.openValue(ctx, project, env, name, n, sv.Ciphertext)
	if err != nil {
		return nil, err
	}
	v := &rotate.Version{Number: n, Value: value}
	for _, label := range []string{tokenward.LabelCurrent, tokenward.LabelPending, tokenward.LabelPrevious} {
		if labelVersion(l, label) == n {
			v.Labels = append(v.Labels, label)
		}
	}
	if l.Pending == n {
		v.RotationID = l.PendingRotation
	}
	return v, nil
}

// Promote implements rotate.Secrets.
func (s *RotationSecrets) Promote(ctx context.Context, p string, n int) error {
	project, env, name, err := splitSecretPath(p)
	if err != nil {
		return err
	}
	return s.labels.PromoteVersion(ctx, project, env, name, n, s.c.Now().UTC())
}

// Unlabel implements rotate.Secrets.
func (s *RotationSecrets) Unlabel(ctx context.Context, p, label string, n int) error {
	project, env, name, err := splitSecretPath(p)
	if err != nil {
		return err
	}
	return s.labels.UnlabelVersion(ctx, project, env, name, label, n)
}

// Restore implements rotate.Secrets.
func (s *RotationSecrets) Restore(ctx context.Context, p string, n int) error {
	project, env, name, err := splitSecretPath(p)
	if err != nil {
		return err
	}
	return s.labels.RestoreVersion(ctx, project, env, name, n, s.c.Now().UTC())
}

// ReadSecret implements rotate.SecretReader: the CURRENT value of p (an
// admin DSN, a webhook key), read by the server itself for a rotator.
func (s *RotationSecrets) ReadSecret(ctx context.Context, p string) ([]byte, error) {
	return s.c.currentValue(ctx, p)
}

// RotationTokens is the "tokenward" rotator's minter: a rotated service
// token gets a successor with the same kind, owner, grants and lifetime,
// made by the token that rotates and never broader than it.
type RotationTokens struct{ c *Core }

var (
	_ rotate.TokenMinter  = RotationTokens{}
	_ rotate.TokenChecker = RotationTokens{}
)

// RotationTokens returns the minter for the tokenward rotator.
func (c *Core) RotationTokens() RotationTokens { return RotationTokens{c} }

func (m RotationTokens) lookup(ctx context.Context, raw string) (*tokenward.Token, error) {
	if _, err := tokenward.ParseToken(raw); err != nil {
		return nil, tokenward.Errorf(tokenward.EINVALID, "the secret does not hold a tokenward token")
	}
	t, err := m.c.Store.TokenByHash(ctx, tokenward.HashToken(raw))
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return nil, tokenward.Errorf(tokenward.ENOTFOUND, "the secret's token is unknown to this server")
	}
	return t, err
}

// Mint implements rotate.TokenMinter.
func (m RotationTokens) Mint(ctx context.Context, like string) (string, error) {
	old, err := m.lookup(ctx, like)
	if err != nil {
		return "", err
	}
	// Only a token that may still be used mints its successor: a revoked
	// (or suspended) or expired one is no authority for a token with its
	// grants and a fresh lifetime.
	if err := unusable(old, m.c.Now()); err != nil {
		return "", tokenward.Errorf(tokenward.ECONFLICT, "%s; it has no successor", tokenward.ErrorMessage(err))
	}
	if old.Kind == tokenward.TokenJIT {
		return "", tokenward.Errorf(tokenward.EINVALID, "token %s is a just-in-time token; those expire instead of rotating", old.ID)
	}
	var ttl time.Duration
	if !old.ExpiresAt.IsZero() {
		ttl = old.ExpiresAt.Sub(old.CreatedAt)
	}
	// Successors are named NAME@rot-XXXXXXXX: active names must be unique
	// and the old token stays active through grace.
	base, _, _ := strings.Cut(old.Name, "@rot-")
	suffix := "@rot-" + strings.ToLower(rand.Text()[:8])
	if len(base)+len(suffix) > tokenward.MaxTokenNameLen {
		base = base[:tokenward.MaxTokenNameLen-len(suffix)]
	}
	// The old token mints its own successor: the same grants, no broader,
	// and a lifetime as long as its own.
	t, secret, err := m.c.CreateToken(ctx, &tokenward.Token{ID: old.ID, Kind: tokenward.TokenAdmin, Grants: old.Grants}, CreateTokenInput{
		Name: base + suffix, Kind: old.Kind, Owner: old.Owner, Grants: old.Grants, TTL: ttl,
	})
	if err != nil {
		return "", err
	}
	m.c.Logger.Info("rotation minted a successor token", "old", old.ID, "new", t.ID)
	return secret, nil
}

// Revoke implements rotate.TokenMinter; revoking a revoked token succeeds.
func (m RotationTokens) Revoke(ctx context.Context, raw string) error {
	t, err := m.lookup(ctx, raw)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	return m.c.revoke(ctx, t.ID)
}

// Check implements rotate.TokenChecker.
func (m RotationTokens) Check(ctx context.Context, raw string) error {
	t, err := m.lookup(ctx, raw)
	if err != nil {
		return err
	}
	now := m.c.Now()
	if !t.RevokedAt.IsZero() || (!t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)) {
		return tokenward.Errorf(tokenward.ECONFLICT, "token %s is not valid", t.ID)
	}
	return nil
}

func (c *Core) rotation() (*Rotation, error) {
	if c.Rotation == nil || c.Rotation.Machine == nil {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "rotation is not enabled on this server")
	}
	return c.Rotation, nil
}

// BulkJobs is the store of bulk rotation jobs.
func (c *Core) BulkJobs() (rotate.BulkJobStore, error) {
	rot, err := c.rotation()
	if err != nil {
		return nil, err
	}
	if rot.BulkJobs == nil {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "bulk rotation is not enabled on this server")
	}
	return rot.BulkJobs, nil
}

// rotationOf is the rotation feature, once tok may rotate the secret at p.
func (c *Core) rotationOf(tok *tokenward.Token, p string) (*Rotation, error) {
	rot, err := c.rotation()
	if err != nil {
		return nil, err
	}
	if _, _, _, err := requireRotate(tok, p); err != nil {
		return nil, err
	}
	return rot, nil
}

// requireRotate checks tok may rotate the secret at p.
func requireRotate(tok *tokenward.Token, p string) (string, string, string, error) {
	project, env, name, err := splitSecretPath(p)
	if err != nil {
		return "", "", "", err
	}
	return project, env, name, require(tok, tokenward.ActionRotate, project, env, name)
}

func mayRotate(tok *tokenward.Token, p string) bool {
	project, env, name, err := splitSecretPath(p)
	return err == nil && tok.Grants.Allows(tokenward.ActionRotate, project, env, name)
}

// SetRotationPolicy creates or replaces the rotation policy of p.Path.
// It needs rotate on the secret, read on every secret the rotator's config
// names (keys ending in _secret: the server will use them on the policy's
// behalf), and, for the exec rotator, which runs a program on the server,
// admin over everything. A new policy is first due one interval from now.
func (c *Core) SetRotationPolicy(ctx context.Context, tok *tokenward.Token, p *rotate.Policy) (*rotate.Policy, error) {
	rot, err := c.rotationOf(tok, p.Path)
	if err != nil {
		return nil, err
	}
	for k, v := range p.Config {
		if strings.HasSuffix(k, "_secret") {
			project, env, name, err := splitSecretPath(v)
			if err != nil {
				return nil, tokenward.Errorf(tokenward.EINVALID, "config %s: %s", k, tokenward.ErrorMessage(err))
			}
			if err := require(tok, tokenward.ActionRead, project, env, name); err != nil {
				return nil, err
			}
		}
	}
	// The webhook receives the secret's values (the old one to revoke, the
	// pending one to test or discard): whoever says where it goes must be
	// able to read the secret, which rotate alone does not grant.
	if p.Rotator == "webhook" {
		project, env, name, _ := splitSecretPath(p.Path)
		if err := require(tok, tokenward.ActionRead, project, env, name); err != nil {
			return nil, tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: a webhook rotator is sent the secret's values and needs read on %s", tokenward.Printable(p.Path))
		}
	}
	if p.Rotator == "exec" && !isTokenAdmin(tok) {
		return nil, tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: the exec rotator runs a program on the server and needs admin on */*/*")
	}
	// Plain http is allowed only to loopback, i.e. to services on the
	// server's own host: that reach is an admin's to give.
	if p.Rotator == "webhook" && strings.HasPrefix(strings.ToLower(p.Config["url"]), "http:") && !isTokenAdmin(tok) {
		return nil, tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: a webhook to plain http (loopback) needs admin on */*/*")
	}
	if err := p.Validate(rot.Machine.Rotators); err != nil {
		return nil, err
	}
	now := c.Now().UTC()
	out := *p
	out.LastAt, out.NextAt = time.Time{}, out.Next(now)
	if old, err := rot.Machine.Store.Policy(ctx, p.Path); err == nil {
		out.LastAt = old.LastAt
		if !old.LastAt.IsZero() {
			out.NextAt = out.Next(old.LastAt)
		}
	} else if tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		return nil, err
	}
	if err := rot.Machine.Store.PutPolicy(ctx, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotationPolicy returns the policy of p.
func (c *Core) RotationPolicy(ctx context.Context, tok *tokenward.Token, p string) (*rotate.Policy, error) {
	rot, err := c.rotationOf(tok, p)
	if err != nil {
		return nil, err
	}
	return rot.Machine.Store.Policy(ctx, p)
}

// RotationPolicies lists the policies of the secrets tok may rotate.
func (c *Core) RotationPolicies(ctx context.Context, tok *tokenward.Token) ([]*rotate.Policy, error) {
	rot, err := c.rotation()
	if err != nil {
		return nil, err
	}
	all, err := rot.Machine.Store.Policies(ctx)
	if err != nil {
		return nil, err
	}
	return filter(all, func(p *rotate.Policy) bool { return mayRotate(tok, p.Path) }), nil
}

// DisableRotationPolicy stops scheduled rotations of p (rotate now still
// works); enabled=true turns them back on.
func (c *Core) DisableRotationPolicy(ctx context.Context, tok *tokenward.Token, p string, disabled bool) (*rotate.Policy, error) {
	pol, err := c.RotationPolicy(ctx, tok, p)
	if err != nil {
		return nil, err
	}
	pol.Disabled = disabled
	if !disabled && !pol.NextAt.After(c.Now()) {
		pol.NextAt = pol.Next(c.Now().UTC())
	}
	if err := c.Rotation.Machine.Store.PutPolicy(ctx, pol); err != nil {
		return nil, err
	}
	return pol, nil
}

// RotateNow rotates p under its policy now and runs the rotation as far as
// it goes (finished and waiting for grace, failed, or waiting to retry).
// ECONFLICT when p has a rotation in flight.
func (c *Core) RotateNow(ctx context.Context, tok *tokenward.Token, p string) (*rotate.Rotation, error) {
	rot, err := c.rotationOf(tok, p)
	if err != nil {
		return nil, err
	}
	// A retired environment's secrets are archived: a rotation would ask
	// the rotator for a new credential it can never store.
	project, env, _, _ := splitSecretPath(p) // valid: rotationOf checked it
	if err := c.RefuseRetired(ctx, project, env); err != nil {
		return nil, err
	}
	r, err := rot.Machine.RotateNow(ctx, p, "manual: "+tok.ID)
	if r != nil && err != nil && tokenward.ErrorCode(err) == tokenward.EINTERNAL {
		// A failed step is recorded in r (retry time, message without a
		// value); the caller gets the record, not a 500.
		return r, nil
	}
	return r, err
}

// grantCatalog is the catalog as one token sees it: only the secrets it
// may rotate, so a bulk plan never names the others.
type grantCatalog struct {
	cat SecretCatalog
	tok *tokenward.Token
}

func (g grantCatalog) AllSecrets(ctx context.Context) ([]*tokenward.Secret, error) {
	all, err := g.cat.AllSecrets(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(s *tokenward.Secret) bool {
		return !g.tok.Grants.Allows(tokenward.ActionRotate, s.Project, s.Env, s.Name)
	}), nil
}

// MaxBulkConcurrency bounds a bulk rotation's concurrency.
const MaxBulkConcurrency = 32

// BulkRotate plans (dryRun) or runs a rotation of every secret sel picks
// among those tok may rotate, concurrency at a time (0: the default).
func (c *Core) BulkRotate(ctx context.Context, tok *tokenward.Token, sel rotate.Selector, dryRun bool, concurrency int, reason string) ([]rotate.BulkItem, error) {
	rot, err := c.rotation()
	if err != nil {
		return nil, err
	}
	if rot.Catalog == nil {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "bulk rotation is not enabled on this server")
	}
	if err := sel.Validate(); err != nil {
		return nil, err
	}
	if concurrency < 0 || concurrency > MaxBulkConcurrency {
		return nil, tokenward.Errorf(tokenward.EINVALID, "concurrency must be from 1 to %d", MaxBulkConcurrency)
	}
	if concurrency == 0 {
		concurrency = rot.BulkConcurrency
	}
	if len(reason) > 200 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "reason is longer than 200 characters")
	}
	b := &rotate.Bulk{Machine: rot.Machine, Catalog: grantCatalog{rot.Catalog, tok}, Concurrency: concurrency}
	if dryRun {
		return b.Plan(ctx, sel)
	}
	if reason == "" {
		reason = "by " + tok.ID
	}
	return b.Run(ctx, sel, reason)
}

// RotationStatus lists the in-flight rotations and the recent failures
// (limit, newest first) of the secrets tok may rotate.
func (c *Core) RotationStatus(ctx context.Context, tok *tokenward.Token, limit int) (inflight, failed []*rotate.Rotation, err error) {
	rot, err := c.rotation()
	if err != nil {
		return nil, nil, err
	}
	all, err := rot.Machine.Store.InFlight(ctx)
	if err != nil {
		return nil, nil, err
	}
	inflight = filter(all, func(r *rotate.Rotation) bool { return mayRotate(tok, r.Path) })
	hist, err := rot.Machine.Store.History(ctx, "", 0)
	if err != nil {
		return nil, nil, err
	}
	failed = []*rotate.Rotation{}
	for _, r := range hist {
		if len(failed) >= limit {
			break
		}
		if r.Step == rotate.StepFailed && mayRotate(tok, r.Path) {
			failed = append(failed, r)
		}
	}
	return inflight, failed, nil
}

// RotationHistory lists the rotations of p, newest first.
func (c *Core) RotationHistory(ctx context.Context, tok *tokenward.Token, p string, limit int) ([]*rotate.Rotation, error) {
	rot, err := c.rotationOf(tok, p)
	if err != nil {
		return nil, err
	}
	h, err := rot.Machine.Store.History(ctx, p, limit)
	if h == nil {
		h = []*rotate.Rotation{}
	}
	return h, err
}

// RollbackRotation makes PREVIOUS current again, within the grace period of
// p's last rotation; the new value is never revoked upstream.
func (c *Core) RollbackRotation(ctx context.Context, tok *tokenward.Token, p string) (*rotate.Rotation, error) {
	rot, err := c.rotation()
	if err != nil {
		return nil, err
	}
	project, env, name, err := requireRotate(tok, p)
	if err != nil {
		return nil, err
	}
	// A value written by hand after the rotation finished is CURRENT now:
	// rolling back to PREVIOUS would silently drop it.
	if ls, ok := c.Store.(tokenward.LabelStore); ok {
		inflight, err := rot.Machine.Store.InFlight(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range inflight {
			if r.Path != p || r.Step != rotate.StepRevoke {
				continue
			}
			l, err := ls.SecretLabels(ctx, project, env, name)
			if err != nil {
				return nil, err
			}
			if l.Current != r.PendingVersion && l.Current != r.CurrentVersion {
				return nil, tokenward.Errorf(tokenward.ECONFLICT, "%s was written after its rotation (version %d is CURRENT); roll back to a version number instead", p, l.Current)
			}
		}
	}
	r, err := rot.Machine.Rollback(ctx, p)
	if err != nil {
		return nil, err
	}
	return rot.Machine.Store.Rotation(ctx, r.ID)
}

// printable bounds s for an error message.
func printable(s string) string {
	const max = 64
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if ch := s[i]; ch >= 0x20 && ch < 0x7f {
			b = append(b, ch)
		} else {
			b = append(b, '?')
		}
	}
	return string(b)
}
