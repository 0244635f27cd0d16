package core

import (
	"context"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

// Revocations on the server's own authority: suspension by an anomaly rule
// and leak reports.

// systemRevoke revokes a token on the server's own authority.
func (c *Core) systemRevoke(ctx context.Context, id string) (*tokenward.Token, error) {
	if err := c.revoke(ctx, id); err != nil {
		return nil, err
	}
	return c.monitorRevoked(ctx, id)
}

// monitorRevoked tells the monitor that token id is revoked now, and
// returns the token as stored.
func (c *Core) monitorRevoked(ctx context.Context, id string) (*tokenward.Token, error) {
	t, err := c.Store.Token(ctx, id)
	if err == nil && c.Monitoring != nil {
		c.Monitoring.Monitor.SetToken(t)
	}
	return t, err
}

// suspend revokes a token because an anomaly rule says so, audited, and
// publishes token.suspended (with a Tail, every server does when it reads
// the audit entry).
func (c *Core) suspend(ctx context.Context, id string, rule monitor.RuleID, anomalyID string) error {
	if _, err := c.systemRevoke(ctx, id); err != nil {
		return err
	}
	if err := c.record(ctx, &tokenward.AuditEntry{Action: "token.suspend", Resource: "token:" + id,
		Reason: "anomaly " + string(rule), Meta: map[string]string{"rule": string(rule), "anomaly": anomalyID}}); err != nil {
		return err
	}
	if c.Monitoring.Tail == nil {
		c.Monitoring.publish(monitor.Event{Type: monitor.EventTokenSuspended, Resource: "token:" + id, Reason: string(rule)})
	}
	return nil
}

// ReportLeak handles a leak report of a token, from anyone: a valid
// tokenward token is revoked at once. It returns the token's id ("" when
// the text is no known token) for the caller's audit entry, whose action
// monitor.ActionReportLeak makes the monitor fire leak_reported (which
// alerts the owner). Callers must answer the reporter the same either way.
func (c *Core) ReportLeak(ctx context.Context, raw string) (string, error) {
	if err := c.needMonitoring(); err != nil {
		return "", err
	}
	if _, err := tokenward.ParseToken(raw); err != nil {
		return "", nil
	}
	t, err := c.Store.TokenByHash(ctx, tokenward.HashToken(raw))
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if t.RevokedAt.IsZero() {
		if _, err := c.systemRevoke(ctx, t.ID); err != nil {
			return "", err
		}
		c.Monitoring.publish(monitor.Event{Type: monitor.EventTokenRevoked, Resource: "token:" + t.ID, Reason: "reported as leaked"})
	}
	return t.ID, nil
}
