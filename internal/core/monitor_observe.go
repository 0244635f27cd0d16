package core

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/rotate"
)

// Detection: every recorded audit entry feeds the monitor, which finds
// anomalies; allowed entries become change events.

// ObserveAudit is called with every audit entry once it is recorded: it
// feeds the monitor, stores and alerts anomalies, suspends tokens, and
// publishes the change events the entry implies. It never fails the
// request: the entry is recorded already. With a Tail (servers sharing
// PostgreSQL) it only wakes the tail, which observes the entry when it
// reads it from the shared table (monitor_tail.go).
func (c *Core) ObserveAudit(ctx context.Context, e *tokenward.AuditEntry) {
	m := c.Monitoring
	if m == nil {
		return
	}
	if m.Tail != nil {
		m.Tail.wakeUp()
		return
	}
	c.observe(ctx, e, true)
}

// observe feeds e to the monitor (baselines, usage counters, token
// records) and publishes its change event. With act it also stores,
// alerts and acts on the anomalies found, and publishes to the webhooks
// as well as to this server's subscribers; without (a server that does
// not lead the ones sharing the database) it publishes to its
// subscribers only.
func (c *Core) observe(ctx context.Context, e *tokenward.AuditEntry, act bool) {
	m := c.Monitoring
	if e.Outcome == tokenward.OutcomeAllowed {
		c.changeOf(ctx, e, act)
		if e.Action == "secret.read_env" {
			c.countEnvRead(ctx, e)
		}
	}
	for _, an := range m.Monitor.Observe(c.leakSignal(ctx, e)) {
		if !act {
			m.logger().Debug("anomaly left to the leader", "rule", an.Rule, "token_id", an.TokenID, "seq", e.Seq)
			continue
		}
		rec := &monitor.Record{ID: monitor.NewRecordID(), Anomaly: an}
		if err := m.Store.AddAnomaly(context.WithoutCancel(ctx), rec); err != nil {
			m.logger().Error("store anomaly", "rule", an.Rule, "err", err)
		}
		m.logger().Warn("anomaly", "id", rec.ID, "rule", an.Rule, "severity", an.Severity, "token_id", an.TokenID, "suspend", an.Suspend)
		if an.Suspend && an.TokenID != "" {
			if err := c.suspend(context.WithoutCancel(ctx), an.TokenID, an.Rule, rec.ID); err != nil {
				m.logger().Error("suspend token", "token_id", an.TokenID, "err", err)
			}
		}
		m.alert(an)
	}
}

// leakSignal returns e, or for a request refused because a known token was
// revoked or expired, a copy whose Reason says so in the monitor's terms.
// The store's record decides (it also sees revocations made by another
// server sharing it), so a refusal at the very instant of the revocation
// still counts as a use.
func (c *Core) leakSignal(ctx context.Context, e *tokenward.AuditEntry) *tokenward.AuditEntry {
	if e.TokenID == "" || e.Outcome != tokenward.OutcomeDenied || e.Status != 401 ||
		e.Reason == monitor.ReasonTokenRevoked || e.Reason == monitor.ReasonTokenExpired {
		return e
	}
	t, err := c.Store.Token(context.WithoutCancel(ctx), e.TokenID)
	if err != nil {
		return e
	}
	cp := *e
	switch {
	case !t.RevokedAt.IsZero():
		cp.Reason = monitor.ReasonTokenRevoked
	case !t.ExpiresAt.IsZero() && !e.Time.Before(t.ExpiresAt):
		cp.Reason = monitor.ReasonTokenExpired
	default:
		return e
	}
	return &cp
}

// changeOf keeps the monitor's token records current and publishes the
// change event an allowed entry stands for (with hooks, to the webhooks
// too).
func (c *Core) changeOf(ctx context.Context, e *tokenward.AuditEntry, hooks bool) {
	m := c.Monitoring
	ev := monitor.Event{Time: e.Time, Resource: e.Resource, Actor: e.TokenID}
	switch e.Action {
	case "secret.write", "secret.rollback":
		ev.Type = monitor.EventSecretUpdated
		ev.Version, _ = strconv.Atoi(e.Meta["version"])
		if ev.Version == 1 {
			ev.Type = monitor.EventSecretCreated
		}
	case "secret.rotate", "rotation.finish", "rotate.finish":
		ev.Type = monitor.EventSecretRotated
		ev.Version, _ = strconv.Atoi(e.Meta["version"])
	case "token.create", "token.narrow":
		c.refreshToken(ctx, e.Resource)
		return
	case "auth.oidc_login":
		// A just-in-time token: the monitor learns its expiry and CI facts.
		c.refreshToken(ctx, e.Meta["minted"])
		return
	case "token.revoke":
		c.refreshToken(ctx, e.Resource)
		ev.Type = monitor.EventTokenRevoked
		ev.Reason = e.Reason
	case "token.suspend":
		// In line, suspend publishes token.suspended itself; from the
		// tail, every server learns of the leader's suspension here.
		if m.Tail == nil {
			return
		}
		c.refreshToken(ctx, e.Resource)
		ev.Type = monitor.EventTokenSuspended
		ev.Reason = e.Meta["rule"]
	default:
		return
	}
	if m.Tail != nil {
		// Every server publishes this change: one id for it everywhere.
		ev.ID = fmt.Sprintf("evt_%016x", e.Seq)
	}
	if hooks {
		m.publish(ev)
	} else {
		m.publishLocal(ev)
	}
}

// countEnvRead counts an environment-wide read (run, export) as a read of
// each secret the token could read there: the entry names only project/env.
func (c *Core) countEnvRead(ctx context.Context, e *tokenward.AuditEntry) {
	project, env, ok := strings.Cut(e.Resource, "/")
	if !ok || e.TokenID == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	t, err := c.Store.Token(ctx, e.TokenID)
	if err != nil {
		return
	}
	list, err := c.secretsRO(ctx, project, env)
	if err != nil {
		return
	}
	names := make([]string, 0, len(list))
	every := t.Grants.AllowsEveryName(tokenward.ActionRead, project, env)
	for _, s := range list {
		if every || t.Grants.Allows(tokenward.ActionRead, project, env, s.Name) {
			names = append(names, s.Name)
		}
	}
	c.Monitoring.Monitor.RecordSecretReads(project, env, names, e.Time, e.SourceIP, e.TokenID)
}

func (c *Core) refreshToken(ctx context.Context, resource string) {
	id, ok := strings.CutPrefix(resource, "token:")
	if !ok {
		return
	}
	if t, err := c.Store.Token(context.WithoutCancel(ctx), id); err == nil {
		c.Monitoring.Monitor.SetToken(t)
	}
}

// AnnounceRotations publishes secret.rotated for every rotation in the
// recent history of store whose new value became CURRENT (its next step is
// revoke or done) and whose id is not in seen, and adds it to seen. A
// rotation last updated before primeBefore only fills seen: when the
// announcing server starts (time.Now(), so a restart announces nothing
// twice), or when it becomes the leader of several servers (a little
// before, so what the old leader finished just before it died is
// announced, at least once). The leader polls it: the rotation machine
// has no completion hook, and may run on any server.
func (c *Core) AnnounceRotations(ctx context.Context, store rotate.Store, seen map[string]bool, primeBefore time.Time) error {
	if c.Monitoring == nil {
		return nil
	}
	hist, err := store.History(ctx, "", 200)
	if err != nil {
		return err
	}
	for i := len(hist) - 1; i >= 0; i-- { // oldest first
		r := hist[i]
		if seen[r.ID] || (r.Step != rotate.StepRevoke && r.Step != rotate.StepDone) {
			continue
		}
		seen[r.ID] = true
		if r.UpdatedAt.Before(primeBefore) {
			continue
		}
		c.Monitoring.publish(monitor.Event{Type: monitor.EventSecretRotated, Resource: r.Path, Version: r.PendingVersion,
			Reason: r.Reason, Data: map[string]string{"rotation": r.ID, "rotator": r.Rotator}})
	}
	// Bound seen to what the history window can still return.
	if len(seen) > 10_000 {
		keep := make(map[string]bool, len(hist))
		for _, r := range hist {
			keep[r.ID] = seen[r.ID]
		}
		clear(seen)
		maps.Copy(seen, keep)
	}
	return nil
}
