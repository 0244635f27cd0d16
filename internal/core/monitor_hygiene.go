package core

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

// The hygiene report and the background job that acts on it.

// buildReport computes the hygiene report from the store and the monitor.
func (c *Core) buildReport(ctx context.Context, opts monitor.ReportOptions) (*monitor.Report, error) {
	m := c.Monitoring
	tokens, err := c.Store.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	projects, err := c.Store.Projects(ctx)
	if err != nil {
		return nil, err
	}
	var secrets []*tokenward.Secret
	for _, p := range projects {
		for _, e := range p.Envs {
			list, err := c.Store.Secrets(ctx, p.Name, e)
			if err != nil {
				return nil, err
			}
			secrets = append(secrets, list...)
		}
	}
	usage := make(map[string]monitor.TokenUsage, len(tokens))
	for _, t := range tokens {
		if u, ok := m.Monitor.Usage(t.ID); ok {
			usage[t.ID] = u
		}
	}
	recs, err := m.Store.Anomalies(ctx, true, 1000)
	if err != nil {
		return nil, err
	}
	anomalies := make([]monitor.Anomaly, len(recs))
	for i, r := range recs {
		anomalies[i] = r.Anomaly
	}
	rotations, err := c.rotationPolicies(ctx)
	if err != nil {
		return nil, err
	}
	return monitor.BuildReport(monitor.ReportInput{
		Now: c.Now().UTC(), Tokens: tokens, Secrets: secrets, Rotations: rotations,
		Usage: usage, Anomalies: anomalies, Options: opts,
	}), nil
}

// rotationPolicies are the report's rotation policies: from
// Monitoring.Rotations when set, else from the rotation feature's store.
func (c *Core) rotationPolicies(ctx context.Context) ([]monitor.RotationPolicy, error) {
	if c.Monitoring.Rotations != nil {
		return c.Monitoring.Rotations(ctx)
	}
	if c.Rotation == nil || c.Rotation.Machine == nil || c.Rotation.Machine.Store == nil {
		return nil, nil
	}
	ps, err := c.Rotation.Machine.Store.Policies(ctx)
	if err != nil {
		return nil, err
	}
	now := c.Now().UTC()
	var out []monitor.RotationPolicy
	for _, p := range ps {
		if p.Disabled {
			continue
		}
		every := p.Every
		if every == 0 && p.Cron != "" {
			// A cron schedule's interval, measured from its last run.
			from := p.LastAt
			if from.IsZero() {
				from = now
			}
			every = p.Next(from).Sub(from)
		}
		if every <= 0 {
			continue
		}
		out = append(out, monitor.RotationPolicy{Secret: p.Path, Every: every, LastRotated: p.LastAt})
	}
	return out, nil
}

// Report returns the hygiene report: expiring, overdue rotations, stale and
// over-privileged tokens, open anomalies.
func (c *Core) Report(ctx context.Context, tok *tokenward.Token) (*monitor.Report, error) {
	return c.ReportExpiringWithin(ctx, tok, 0)
}

// ReportExpiringWithin is Report with the expiry window set to window
// instead of the server's (0: the server's), e.g. the web console's 90
// days.
func (c *Core) ReportExpiringWithin(ctx context.Context, tok *tokenward.Token, window time.Duration) (*monitor.Report, error) {
	if err := c.needMonitoringAudit(tok); err != nil {
		return nil, err
	}
	opts := c.Monitoring.ReportOptions
	if window > 0 {
		opts.ExpiryWindow = window
	}
	return c.buildReport(ctx, opts)
}

// HygieneResult says what one hygiene run did.
type HygieneResult struct {
	Notified, Revoked, Cleared, ExpiryAlerts, Purged int
	// PurgeHeld counts archives due but kept: a PurgeHook failed.
	PurgeHeld int
	// TokensPruned counts tokens deleted TokenRetention after they were
	// revoked or expired.
	TokensPruned int
}

// RunHygiene is the background job: stale-token notices and (by policy)
// revocations, expiry alerts, purging archives past retention, and saving
// the monitor's snapshot. The server runs it periodically; tests call it
// with an injected clock.
func (c *Core) RunHygiene(ctx context.Context) (HygieneResult, error) {
	var res HygieneResult
	if err := c.needMonitoring(); err != nil {
		return res, err
	}
	m := c.Monitoring
	now := c.Now().UTC()
	if err := c.pruneTokens(ctx, now, &res); err != nil {
		return res, err
	}
	rep, err := c.buildReport(ctx, m.ReportOptions)
	if err != nil {
		return res, err
	}
	notices, err := m.Store.StaleNotices(ctx)
	if err != nil {
		return res, err
	}
	for _, step := range monitor.PlanStale(rep, notices, now, m.StalePolicy) {
		switch step.Step {
		case monitor.StaleNotify:
			if err := m.Store.SetStaleNotice(ctx, step.TokenID, now); err != nil {
				return res, err
			}
			m.logger().Info("stale token: owner notified", "token_id", step.TokenID, "owner", step.Owner, "why", step.Why)
			res.Notified++
			m.alert(monitor.Anomaly{Rule: "stale_token", Severity: monitor.SeverityLow, Time: now, TokenID: step.TokenID,
				TokenName: step.Name, Explanation: fmt.Sprintf("token %s (owner %s) is stale: %s", step.Name, orNone(step.Owner), step.Why), Evidence: []monitor.Evidence{}})
		case monitor.StaleRevoke:
			revoked, err := c.revokeStale(ctx, step.TokenID, notices[step.TokenID])
			if err != nil {
				return res, err
			}
			if !revoked {
				// Used since the report was built (a pipeline woke up):
				// the use came first, so the token stays, as any used one.
				if err := m.Store.ClearStaleNotice(ctx, step.TokenID); err != nil {
					return res, err
				}
				m.logger().Info("stale token used before its revocation: kept", "token_id", step.TokenID)
				res.Cleared++
				continue
			}
			if err := c.record(ctx, &tokenward.AuditEntry{Action: "token.revoke", Resource: "token:" + step.TokenID, Reason: "stale: " + step.Why, Meta: map[string]string{"by": "hygiene"}}); err != nil {
				return res, err
			}
			if err := m.Store.ClearStaleNotice(ctx, step.TokenID); err != nil {
				return res, err
			}
			res.Revoked++
		case monitor.StaleClear:
			if err := m.Store.ClearStaleNotice(ctx, step.TokenID); err != nil {
				return res, err
			}
			res.Cleared++
		}
	}
	// Each item is alerted once a day, by whichever server claims it in
	// the store: a new leader does not alert again what the last one did.
	if err := m.Store.PruneExpiryAlerts(ctx, now.Add(-2*expiryAlertEvery)); err != nil {
		return res, err
	}
	for _, it := range rep.Expiring {
		claimed, err := m.Store.ClaimExpiryAlert(ctx, it.Kind+":"+it.ID, now, now.Add(-expiryAlertEvery))
		if err != nil {
			return res, err
		}
		if !claimed {
			continue
		}
		res.ExpiryAlerts++
		an := monitor.Anomaly{Rule: "expiring", Severity: monitor.SeverityLow, Time: now, Resource: it.ID, Evidence: []monitor.Evidence{},
			Explanation: fmt.Sprintf("%s %s (owner %s) expires %s (in %d days)", it.Kind, it.ID, orNone(it.Owner), it.ExpiresAt.Format(time.DateOnly), it.InDays)}
		if it.Kind == "token" {
			an.TokenID, an.TokenName, an.Resource = it.ID, it.Name, ""
		}
		m.alert(an)
	}
	if err := c.purgeArchives(ctx, now, &res); err != nil {
		return res, err
	}
	m.Monitor.Prune(now)
	return res, c.SaveMonitorState(ctx)
}

// revokeStale revokes a stale token unless it was used after notifiedAt,
// its notice: the report that found it stale was built a moment ago, and a
// use since then must win. A use this server has not written yet counts,
// and so does one the monitor has seen (with several servers, through the
// shared audit trail); the store revokes only if none is recorded there
// either, in the same statement, so another server's recorded use counts
// too. It reports whether it revoked.
func (c *Core) revokeStale(ctx context.Context, id string, notifiedAt time.Time) (bool, error) {
	c.usesMu.Lock()
	u, pending := c.uses[id]
	c.usesMu.Unlock()
	if pending && u.At.After(notifiedAt) {
		return false, nil
	}
	if seen, ok := c.Monitoring.Monitor.Usage(id); ok && seen.LastAt.After(notifiedAt) {
		return false, nil
	}
	revoked, err := c.Monitoring.Store.RevokeStaleToken(ctx, id, notifiedAt, c.Now().UTC())
	c.tokens.drop(id)
	if err != nil || !revoked {
		return false, err
	}
	if c.TokenRevoked != nil {
		c.TokenRevoked(ctx, id)
	}
	c.monitorRevoked(ctx, id)
	return true, nil
}

// expiryAlertEvery is how often an expiring token or secret is alerted.
const expiryAlertEvery = 24 * time.Hour

// pruneBatch bounds the tokens one statement deletes, so a first prune of
// a large table does not hold the database's write lock for long.
const pruneBatch = 1000

// pruneTokens deletes the tokens revoked or expired TokenRetention before
// now (every CI job's login leaves one; all of them are read by every
// report and listing), in batches, and audits how many went.
func (c *Core) pruneTokens(ctx context.Context, now time.Time, res *HygieneResult) error {
	m := c.Monitoring
	if m.TokenRetention <= 0 {
		return nil
	}
	before := now.Add(-m.TokenRetention)
	for {
		ids, err := m.Store.PruneTokens(ctx, before, pruneBatch)
		if err != nil {
			return err
		}
		for _, id := range ids {
			c.tokens.drop(id)
			m.Monitor.ForgetToken(id)
		}
		res.TokensPruned += len(ids)
		if len(ids) < pruneBatch {
			break
		}
	}
	if res.TokensPruned == 0 {
		return nil
	}
	return c.record(ctx, &tokenward.AuditEntry{Action: "token.prune", Reason: "revoked or expired before " + before.Format(time.RFC3339),
		Meta: map[string]string{"tokens": strconv.Itoa(res.TokensPruned), "retention": m.TokenRetention.String()}})
}

// purgeArchives purges the archives due at now, each once its PurgeHooks
// have taken away what depends on it; one whose hook fails is kept (its
// environment stays retired) and tried again at the next run.
func (c *Core) purgeArchives(ctx context.Context, now time.Time, res *HygieneResult) error {
	m := c.Monitoring
	all, err := m.Store.Archives(ctx)
	if err != nil {
		return err
	}
	for _, a := range all {
		if a.PurgeAt.After(now) {
			continue
		}
		if err := m.purgeHooks(ctx, a); err != nil {
			res.PurgeHeld++
			m.logger().Error("archive kept past its purge time: what depends on it could not be removed; trying again at the next run",
				"project", a.Project, "env", a.Env, "err", tokenward.ErrorMessage(err))
			continue
		}
		gone, err := m.Store.PurgeArchive(ctx, a.Project, a.Env, now)
		if err != nil {
			return err
		}
		if gone == nil {
			continue // another server purged it
		}
		res.Purged++
		if err := c.record(ctx, &tokenward.AuditEntry{Action: "env.purge", Resource: gone.Project + "/" + gone.Env, Reason: "retention over",
			Meta: map[string]string{"secrets": strconv.Itoa(gone.Secrets)}}); err != nil {
			return err
		}
	}
	return nil
}

func (m *Monitoring) purgeHooks(ctx context.Context, a *monitor.Archive) error {
	var errs []error
	for _, hook := range m.PurgeHooks {
		errs = append(errs, hook(ctx, a.Project, a.Env))
	}
	return errors.Join(errs...)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
