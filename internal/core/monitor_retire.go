package core

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

// Retirement of a project or environment: tokens revoked or narrowed,
// dependents disabled, secrets archived until purged.

// RetireHook disables what else depends on a retired scope (OIDC bindings,
// rotation policies) and returns one line per thing it disabled (or would,
// when dryRun). env is "" when a whole project retires.
type RetireHook func(ctx context.Context, project, env string, dryRun bool) ([]string, error)

// DefaultRetention is how long archived secrets stay restorable.
const DefaultRetention = 30 * 24 * time.Hour

// inScope reports whether grant g reaches only into the retired scope:
// its project is the retired one literally and, for an environment, so is
// its environment. A grant with a wildcard there reaches elsewhere too.
func inScope(g tokenward.Grant, project, env string) bool {
	return g.Project == project && (env == "" || g.Env == env)
}

// splitScope splits gs into the grants kept (not in the scope) and the
// ones dropped (in it).
func splitScope(gs tokenward.Grants, project, env string) (keep tokenward.Grants, drop []string) {
	for _, g := range gs {
		if inScope(g, project, env) {
			drop = append(drop, g.String())
		} else {
			keep = append(keep, g)
		}
	}
	return keep, drop
}

// Retire retires project/env (env "": the whole project): it revokes every
// active token whose grants only cover the scope, narrows the others' grants,
// runs the retire hooks, and archives the secrets, restorable for
// retention (0: the default). With dryRun it only plans. Needs admin over
// the scope.
func (c *Core) Retire(ctx context.Context, tok *tokenward.Token, project, env string, retention time.Duration, dryRun bool) (*monitor.RetirePlan, error) {
	if err := c.needMonitoring(); err != nil {
		return nil, err
	}
	m := c.Monitoring
	if err := tokenward.ValidateProjectName(project); err != nil {
		return nil, err
	}
	scope, envPattern := project, "*"
	if env != "" {
		if err := tokenward.ValidateEnvName(env); err != nil {
			return nil, err
		}
		scope, envPattern = project+"/"+env, env
	}
	if err := require(tok, tokenward.ActionAdmin, project, envPattern, "*"); err != nil {
		return nil, err
	}
	if retention == 0 {
		retention = m.Retention
	}
	if retention == 0 {
		retention = DefaultRetention
	}
	if retention < 0 || retention > 10*365*24*time.Hour {
		return nil, tokenward.Errorf(tokenward.EINVALID, "retention must be from 1 second to 10 years")
	}
	p, err := c.Store.Project(ctx, project)
	if err != nil {
		return nil, err
	}
	now := c.Now().UTC()
	plan := &monitor.RetirePlan{Scope: scope, DryRun: dryRun, PurgeAt: now.Add(retention), Revoke: []monitor.PlanToken{}, Narrow: []monitor.PlanNarrow{}, Secrets: []string{}, Disable: []string{}}
	archives, err := m.Store.Archives(ctx)
	if err != nil {
		return nil, err
	}
	archived := map[string]bool{}
	for _, a := range archives {
		if a.Project == project {
			archived[a.Env] = true
		}
	}
	if env != "" {
		if !slices.Contains(p.Envs, env) {
			return nil, tokenward.Errorf(tokenward.ENOTFOUND, "environment %s/%s not found", project, env)
		}
		if archived[env] {
			return nil, tokenward.Errorf(tokenward.ECONFLICT, "environment %s/%s is archived already", project, env)
		}
		plan.Envs = []string{env}
	} else {
		// Environments retired before are archived already: skip them.
		plan.Envs = []string{}
		for _, e := range p.Envs {
			if !archived[e] {
				plan.Envs = append(plan.Envs, e)
			}
		}
	}
	for _, e := range plan.Envs {
		list, err := c.Store.Secrets(ctx, project, e)
		if err != nil {
			return nil, err
		}
		for _, s := range list {
			plan.Secrets = append(plan.Secrets, s.Path())
		}
	}
	tokens, err := c.Store.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tokens {
		if !t.Active(now) {
			continue
		}
		keep, drop := splitScope(t.Grants, project, env)
		pt := monitor.PlanToken{ID: t.ID, Name: t.Name, Owner: t.Owner}
		switch {
		case len(drop) == 0:
		case len(keep) == 0:
			plan.Revoke = append(plan.Revoke, pt)
		default:
			plan.Narrow = append(plan.Narrow, monitor.PlanNarrow{PlanToken: pt, Keep: keep.Strings(), Drop: drop})
		}
	}
	deps, err := c.retireDependents(ctx, tok, project, env, true)
	if err != nil {
		return nil, err
	}
	plan.Disable = append(plan.Disable, deps...)
	cancels, err := c.cancelRotations(ctx, tok, project, env, true)
	if err != nil {
		return nil, err
	}
	plan.Disable = append(plan.Disable, cancels...)
	for _, hook := range m.RetireHooks {
		lines, err := hook(ctx, project, env, true)
		if err != nil {
			return nil, err
		}
		plan.Disable = append(plan.Disable, lines...)
	}
	if dryRun {
		return plan, nil
	}

	// The hooks first: what they end may need the scope's secrets while
	// they are live (a dynamic source's admin URL revokes its leases). The
	// plan refused an environment archived already, so the archive below
	// is not expected to fail. The scope is held from before the hooks
	// until the archive is committed, so nothing they end starts again in
	// between.
	release := func() {}
	if m.HoldScope != nil {
		if release, err = m.HoldScope(ctx, project, env); err != nil {
			return nil, err
		}
		release = sync.OnceFunc(release) // after the archive, or on an error
	}
	defer release()
	for _, hook := range m.RetireHooks {
		if _, err := hook(ctx, project, env, false); err != nil {
			return nil, err
		}
	}
	// Rotations in flight end while the secrets are live: a rollback reads
	// the values it discards upstream and moves labels.
	if _, err := c.cancelRotations(ctx, tok, project, env, false); err != nil {
		return nil, err
	}
	// Archive next: if it fails, no token was revoked or narrowed.
	actor := tok.ID
	for _, e := range plan.Envs {
		a := monitor.Archive{Project: project, Env: e, ArchivedAt: now, ArchivedBy: actor, PurgeAt: plan.PurgeAt}
		list, err := c.Store.Secrets(ctx, project, e)
		if err != nil {
			return nil, err
		}
		n, err := m.Store.ArchiveEnv(ctx, &a)
		if err != nil {
			return nil, err
		}
		a.Secrets = n
		plan.Archives = append(plan.Archives, a)
		if err := c.record(ctx, &tokenward.AuditEntry{TokenID: actor, TokenName: tok.Name, Action: "secret.archive", Resource: project + "/" + e,
			Reason: "retired " + scope, Meta: map[string]string{"secrets": strconv.Itoa(n), "purge_at": plan.PurgeAt.Format(time.RFC3339)}}); err != nil {
			return nil, err
		}
		for _, s := range list {
			m.publish(monitor.Event{Type: monitor.EventSecretRetired, Resource: s.Path(), Actor: actor, Version: s.Version, Reason: "retired " + scope})
		}
	}
	release()
	if _, err := c.retireDependents(ctx, tok, project, env, false); err != nil {
		return nil, err
	}
	// A rotation started since the cancellations (the leader's scheduler,
	// before its policy was disabled just now) ends too: its secret is
	// archived, so nothing of it can go on.
	if _, err := c.cancelRotations(ctx, tok, project, env, false); err != nil {
		return nil, err
	}
	revoke := func(id string) error {
		if _, err := c.systemRevoke(ctx, id); err != nil {
			return err
		}
		return c.record(ctx, &tokenward.AuditEntry{TokenID: actor, TokenName: tok.Name, Action: "token.revoke", Resource: "token:" + id, Reason: "retired " + scope})
	}
	for _, pt := range plan.Revoke {
		if err := revoke(pt.ID); err != nil {
			return nil, err
		}
	}
	// A token's grants may have changed since the plan (another
	// retirement narrowed it, or it was revoked): narrow the grants it
	// holds now, so none dropped meanwhile comes back, and pass over a
	// token no longer active.
	for i := range plan.Narrow {
		n := &plan.Narrow[i]
		t, err := c.Store.Token(ctx, n.ID)
		if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !t.RevokedAt.IsZero() {
			continue
		}
		keep, drop := splitScope(t.Grants, project, env)
		if len(drop) == 0 {
			continue
		}
		if len(keep) == 0 {
			if err := revoke(n.ID); err != nil {
				return nil, err
			}
			n.Keep, n.Drop = []string{}, drop
			continue
		}
		err = m.Store.ReplaceTokenGrants(ctx, n.ID, keep)
		c.tokens.drop(n.ID)
		if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
			continue // revoked in between
		}
		if err != nil {
			return nil, err
		}
		n.Keep, n.Drop = keep.Strings(), drop
		if err := c.record(ctx, &tokenward.AuditEntry{TokenID: actor, TokenName: tok.Name, Action: "token.narrow", Resource: "token:" + n.ID,
			Reason: "retired " + scope, Meta: map[string]string{"dropped": strings.Join(n.Drop, " ")}}); err != nil {
			return nil, err
		}
	}
	plan.Done = true
	return plan, nil
}

// retireDependents disables what depends on a retired scope: OIDC bindings
// whose every grant lies inside it, and rotation policies of its secrets.
// With dryRun it only lists them. Other hooks come from RetireHooks.
func (c *Core) retireDependents(ctx context.Context, tok *tokenward.Token, project, env string, dryRun bool) ([]string, error) {
	var out []string
	scope := project
	if env != "" {
		scope += "/" + env
	}
	if c.OIDC != nil && c.OIDC.Store != nil {
		bs, err := c.OIDC.Store.Bindings(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if !b.Enabled || len(b.Grants) == 0 {
				continue
			}
			inside := true
			for _, g := range b.Grants {
				inside = inside && inScope(g, project, env)
			}
			if !inside {
				continue
			}
			out = append(out, "binding "+b.Name)
			if dryRun {
				continue
			}
			if err := c.OIDC.Store.SetBindingEnabled(ctx, b.Name, false, c.Now().UTC()); err != nil {
				return nil, err
			}
			if err := c.record(ctx, &tokenward.AuditEntry{TokenID: tok.ID, TokenName: tok.Name, Action: "binding.disable", Resource: "binding:" + b.Name, Reason: "retired " + scope}); err != nil {
				return nil, err
			}
		}
	}
	if c.Rotation != nil && c.Rotation.Machine != nil && c.Rotation.Machine.Store != nil {
		store := c.Rotation.Machine.Store
		ps, err := store.Policies(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			parts := strings.Split(p.Path, "/")
			if len(parts) != 3 || p.Disabled || parts[0] != project || (env != "" && parts[1] != env) {
				continue
			}
			out = append(out, "rotation policy "+p.Path)
			if dryRun {
				continue
			}
			p.Disabled = true
			if err := store.PutPolicy(ctx, p); err != nil {
				return nil, err
			}
			if err := c.record(ctx, &tokenward.AuditEntry{TokenID: tok.ID, TokenName: tok.Name, Action: "rotation.policy_disable", Resource: p.Path, Reason: "retired " + scope}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// cancelRotations cancels the rotations in flight of the secrets in
// project/env (env "": the whole project), each audited as
// rotation.cancel: what a retired environment's rotations would do next
// (store a new version, revoke the old credential at the end of grace,
// retry forever against archived secrets) has no place in it. With dryRun
// it only lists them.
func (c *Core) cancelRotations(ctx context.Context, tok *tokenward.Token, project, env string, dryRun bool) ([]string, error) {
	if c.Rotation == nil || c.Rotation.Machine == nil || c.Rotation.Machine.Store == nil {
		return nil, nil
	}
	scope := project
	if env != "" {
		scope += "/" + env
	}
	mach := c.Rotation.Machine
	rs, err := mach.Store.InFlight(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rs {
		parts := strings.Split(r.Path, "/")
		if len(parts) != 3 || parts[0] != project || (env != "" && parts[1] != env) {
			continue
		}
		out = append(out, "rotation of "+r.Path+" ("+r.ID+", at step "+string(r.Step)+")")
		if dryRun {
			continue
		}
		_, cancelled, err := mach.Cancel(ctx, r.ID, "retired "+scope)
		if err != nil {
			return nil, err
		}
		if !cancelled {
			continue // it ended meanwhile
		}
		if err := c.record(ctx, &tokenward.AuditEntry{TokenID: tok.ID, TokenName: tok.Name, Action: "rotation.cancel", Resource: r.Path, Reason: "retired " + scope,
			Meta: map[string]string{"rotation": r.ID, "step": string(r.Step)}}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RestoreEnv brings an archived environment's secrets back (tokens revoked
// at retirement stay revoked). Needs admin over project/env.
func (c *Core) RestoreEnv(ctx context.Context, tok *tokenward.Token, project, env string) (int, error) {
	if err := c.needMonitoring(); err != nil {
		return 0, err
	}
	if err := validEnv(project, env); err != nil {
		return 0, err
	}
	if err := require(tok, tokenward.ActionAdmin, project, env, "*"); err != nil {
		return 0, err
	}
	n, err := c.Monitoring.Store.RestoreEnv(ctx, project, env)
	if err != nil {
		return 0, err
	}
	err = c.record(ctx, &tokenward.AuditEntry{TokenID: tok.ID, TokenName: tok.Name, Action: "secret.unarchive", Resource: project + "/" + env, Meta: map[string]string{"secrets": strconv.Itoa(n)}})
	return n, err
}

// RefuseRetired refuses a write into a retired (archived) environment, or
// a dynamic credential from it (ECONFLICT): a secret written there would be
// live in a scope whose tokens were revoked, and would stand in the way of
// the archive's restore.
func (c *Core) RefuseRetired(ctx context.Context, project, env string) error {
	m := c.Monitoring
	if m == nil || m.Store == nil {
		return nil
	}
	all, err := m.Store.Archives(ctx)
	if err != nil {
		return err
	}
	for _, a := range all {
		if a.Project == project && a.Env == env {
			return tokenward.Errorf(tokenward.ECONFLICT, "environment %s/%s is retired (restorable until %s); restore it first with `tokenward env restore %s/%s`",
				project, env, a.PurgeAt.UTC().Format(time.RFC3339), project, env)
		}
	}
	return nil
}

// Archives lists archived environments tok administers.
func (c *Core) Archives(ctx context.Context, tok *tokenward.Token) ([]*monitor.Archive, error) {
	if err := c.needMonitoring(); err != nil {
		return nil, err
	}
	all, err := c.Monitoring.Store.Archives(ctx)
	if err != nil {
		return nil, err
	}
	return filter(all, func(a *monitor.Archive) bool { return tok.Grants.Allows(tokenward.ActionAdmin, a.Project, a.Env, "*") }), nil
}
