package core

import (
	"context"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

// What clients read of monitoring: anomalies, usage and change events.

// Anomalies lists anomalies, newest first: the open ones, or all.
func (c *Core) Anomalies(ctx context.Context, tok *tokenward.Token, all bool, limit int) ([]*monitor.Record, error) {
	if err := c.needMonitoringAudit(tok); err != nil {
		return nil, err
	}
	if limit < 0 || limit > 10_000 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "limit must be from 0 to 10000")
	}
	return c.Monitoring.Store.Anomalies(ctx, !all, limit)
}

// AckAnomaly acknowledges an anomaly: it leaves the report's open list.
func (c *Core) AckAnomaly(ctx context.Context, tok *tokenward.Token, id string) (*monitor.Record, error) {
	if err := c.needMonitoringAudit(tok); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(id, "anm_") || len(id) != 20 || strings.Trim(id[4:], "0123456789abcdef") != "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "anomaly id must look like anm_ and 16 hex digits")
	}
	if err := c.Monitoring.Store.AckAnomaly(ctx, id, tok.ID, c.Now().UTC()); err != nil {
		return nil, err
	}
	return c.Monitoring.Store.Anomaly(ctx, id)
}

// TokenUsages returns the usage of the tokens tok may manage, by id
// (without the per-resource pairs, which only the report needs).
func (c *Core) TokenUsages(ctx context.Context, tok *tokenward.Token) (map[string]monitor.TokenUsage, error) {
	if err := c.needMonitoring(); err != nil {
		return nil, err
	}
	ts, err := c.Tokens(ctx, tok)
	if err != nil {
		return nil, err
	}
	out := make(map[string]monitor.TokenUsage, len(ts))
	for _, t := range ts {
		if u, ok := c.Monitoring.Monitor.Usage(t.ID); ok {
			u.Uses = nil
			out[t.ID] = u
		}
	}
	return out, nil
}

// SecretUsages returns the reads of the secrets of project/env tok may
// read, by name.
func (c *Core) SecretUsages(ctx context.Context, tok *tokenward.Token, project, env string) (map[string]monitor.SecretUsage, error) {
	if err := c.needMonitoring(); err != nil {
		return nil, err
	}
	list, err := c.ListSecrets(ctx, tok, project, env)
	if err != nil {
		return nil, err
	}
	out := make(map[string]monitor.SecretUsage, len(list))
	for _, s := range list {
		if u, ok := c.Monitoring.Monitor.SecretUsage(s.Path()); ok {
			out[s.Name] = u
		}
	}
	return out, nil
}

// WatchEvents checks that tok may stream change events: any read, audit or
// admin grant; EventVisible then filters each event to what tok covers.
func (c *Core) WatchEvents(tok *tokenward.Token) error {
	if err := c.needMonitoring(); err != nil {
		return err
	}
	if c.Monitoring.Events == nil {
		return tokenward.Errorf(tokenward.EUNAVAILABLE, "change events are not enabled on this server")
	}
	for _, g := range tok.Grants {
		if g.Action == tokenward.ActionRead || g.Action == tokenward.ActionAudit || g.Action == tokenward.ActionAdmin {
			return nil
		}
	}
	return forbidden(tokenward.ActionRead, "*/*/*")
}

// EventVisible reports whether tok may see e: a secret event when tok may
// read (or audit) that secret, a token event when tok may manage the token.
func (c *Core) EventVisible(ctx context.Context, tok *tokenward.Token, e monitor.Event) bool {
	if id, ok := strings.CutPrefix(e.Resource, "token:"); ok {
		if isTokenAdmin(tok) {
			return true
		}
		t, err := c.Store.Token(ctx, id)
		return err == nil && mayManage(tok, t)
	}
	parts := strings.Split(e.Resource, "/")
	if len(parts) != 3 {
		return tok.Grants.Allows(tokenward.ActionAudit, "*", "*", "*")
	}
	return tok.Grants.Allows(tokenward.ActionRead, parts[0], parts[1], parts[2]) ||
		tok.Grants.Allows(tokenward.ActionAudit, parts[0], parts[1], parts[2])
}
