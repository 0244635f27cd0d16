package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

// Monitoring is spread over monitor*.go by responsibility: this file holds
// the feature (its store, wiring and saved state), monitor_observe.go the
// detection behind the audit hook, monitor_suspend.go the revocations made
// on the server's own authority, monitor_hygiene.go the report and the
// hygiene job, monitor_retire.go retirement and archives, and
// monitor_read.go what clients read (anomalies, usage, change events).

// MonitorStore is the storage of usage monitoring, anomalies, stale-token
// notices and retirement. internal/sqlite implements it.
type MonitorStore interface {
	AddAnomaly(ctx context.Context, r *monitor.Record) error
	// Anomalies lists anomalies newest first (limit 0: all).
	Anomalies(ctx context.Context, openOnly bool, limit int) ([]*monitor.Record, error)
	// Anomaly returns one, or ENOTFOUND.
	Anomaly(ctx context.Context, id string) (*monitor.Record, error)
	// AckAnomaly acknowledges one (idempotent); ENOTFOUND for no anomaly.
	AckAnomaly(ctx context.Context, id, by string, at time.Time) error
	// SaveMonitorState stores snapshot, whose cursor is cursor (the audit
	// seq the leader has acted up to), unless the stored cursor is newer,
	// in one statement, and reports whether it did: an old leader's late
	// save never puts an older cursor over a newer leader's.
	SaveMonitorState(ctx context.Context, snapshot []byte, cursor int64, at time.Time) (bool, error)
	// MonitorState returns the saved snapshot, or ENOTFOUND.
	MonitorState(ctx context.Context) ([]byte, error)
	StaleNotices(ctx context.Context) (map[string]time.Time, error)
	SetStaleNotice(ctx context.Context, tokenID string, at time.Time) error
	ClearStaleNotice(ctx context.Context, tokenID string) error
	// RevokeStaleToken revokes token id at at if it is active and its
	// last recorded use is not after usedAfter (never used counts as not
	// after), in one transaction, and reports whether it did: a use
	// recorded before it, by any server, keeps the token. ENOTFOUND for no
	// token.
	RevokeStaleToken(ctx context.Context, id string, usedAfter, at time.Time) (bool, error)
	// ClaimExpiryAlert records an expiry alert of item at at unless one
	// was recorded after lastBefore, and reports whether it did (the
	// caller alerts then): one server alerts, once per period.
	ClaimExpiryAlert(ctx context.Context, item string, at, lastBefore time.Time) (bool, error)
	// PruneExpiryAlerts forgets the alerts recorded before before.
	PruneExpiryAlerts(ctx context.Context, before time.Time) error
	// ReplaceTokenGrants replaces an active token's grants.
	ReplaceTokenGrants(ctx context.Context, id string, gs tokenward.Grants) error
	// ArchiveEnv moves project/env's secrets into the archive (ECONFLICT if
	// archived already) and returns how many.
	ArchiveEnv(ctx context.Context, a *monitor.Archive) (int, error)
	// RestoreEnv moves them back; ENOTFOUND if not archived.
	RestoreEnv(ctx context.Context, project, env string) (int, error)
	Archives(ctx context.Context) ([]*monitor.Archive, error)
	// PruneTokens deletes at most limit tokens revoked or expired before
	// before that no live lease names (oldest first), with their stale
	// notices and console sessions, and returns their ids.
	PruneTokens(ctx context.Context, before time.Time, limit int) ([]string, error)
	// ActiveTokens counts the tokens neither revoked nor expired at now.
	ActiveTokens(ctx context.Context, now time.Time) (int, error)
	// PurgeArchive deletes project/env's archive if it is due at now (its
	// secrets with it) and returns it; nil when it is not due or not there
	// (another server purged it), so each purge is reported once.
	PurgeArchive(ctx context.Context, project, env string, now time.Time) (*monitor.Archive, error)
}

// Monitoring is the usage-monitoring feature of the engine: it observes
// every recorded audit entry, stores and alerts anomalies, suspends tokens
// the policy says to, publishes change events, runs the hygiene job and
// retires environments. Set Core.Monitoring to enable it.
type Monitoring struct {
	Store   MonitorStore
	Monitor *monitor.Monitor
	Alerter *monitor.Alerter // nil: no alerts
	Events  *monitor.Events  // nil: no change events
	// Record writes an audit entry for the server's own actions
	// (suspensions, stale revocations, retirement steps, leak reports). The
	// server sets it to its audit hook, which also observes the entry; nil
	// observes only.
	Record func(ctx context.Context, e *tokenward.AuditEntry) error
	// ReportOptions are the hygiene windows; StalePolicy says what happens
	// to stale tokens.
	ReportOptions monitor.ReportOptions
	StalePolicy   monitor.StalePolicy
	// Retention is how long a retired environment stays restorable.
	Retention time.Duration
	// TokenRetention is how long a revoked or expired token stays listed
	// before the hygiene job deletes it (its audit entries stay); 0 keeps
	// them all. A token a live lease names is kept.
	TokenRetention time.Duration
	// Rotations returns the rotation policies for the report; nil takes
	// them from the rotation feature (Core.Rotation) when it is enabled.
	Rotations func(ctx context.Context) ([]monitor.RotationPolicy, error)
	// RetireHooks run when a scope retires, beside the built-in steps
	// (OIDC bindings and rotation policies are disabled by Retire itself).
	RetireHooks []RetireHook
	// HoldScope, when set, keeps what RetireHooks end from starting anew
	// while a scope retires (tokenward.LeaseStore.HoldScope: no lease is
	// made between the hooks' revocations and the archive). Retire holds
	// it from before the hooks until the archive is committed.
	HoldScope func(ctx context.Context, project, env string) (release func(), err error)
	// PurgeHooks run for each retired environment whose archive is due
	// for purging, before the hygiene job purges it: what a restore would
	// have brought back with it (dynamic sources) goes first. While a hook
	// fails (a source whose lease cannot be revoked yet) the archive is
	// kept, so the environment stays retired, and the next run tries again.
	PurgeHooks []func(ctx context.Context, project, env string) error
	Logger     *slog.Logger
	// Tail, when set, feeds the monitor from the audit table that several
	// servers share instead of in line, and only the leader acts
	// (monitor_tail.go). Nil (SQLite): every entry is observed, and acted
	// on, as it is recorded.
	Tail *AuditTail

	alerts sync.WaitGroup
}

// Wait waits for alerts in flight (at shutdown, and in tests).
func (m *Monitoring) Wait() { m.alerts.Wait() }

func (m *Monitoring) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Logger
}

func (m *Monitoring) alert(an monitor.Anomaly) {
	if m.Alerter == nil || len(m.Alerter.Hooks) == 0 {
		return
	}
	m.alerts.Add(1)
	go func() {
		defer m.alerts.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := m.Alerter.Alert(ctx, an); err != nil {
			m.logger().Warn("alert not delivered", "rule", an.Rule, "token_id", an.TokenID, "err", err)
		}
	}()
}

func (m *Monitoring) publish(e monitor.Event) {
	if m.Events == nil {
		return
	}
	if err := m.Events.Publish(e); err != nil {
		m.logger().Warn("change event not published", "type", e.Type, "err", err)
	}
}

// publishLocal publishes to this server's subscribers only.
func (m *Monitoring) publishLocal(e monitor.Event) {
	if m.Events == nil {
		return
	}
	if err := m.Events.PublishLocal(e); err != nil {
		m.logger().Warn("change event not published", "type", e.Type, "err", err)
	}
}

// needMonitoring is the error of monitoring operations on a server without
// it.
func (c *Core) needMonitoring() error {
	if c.Monitoring == nil {
		return tokenward.Errorf(tokenward.EUNAVAILABLE, "monitoring is not enabled on this server")
	}
	return nil
}

// needMonitoringAudit: anomalies and the report are security data; they
// need the audit action (or admin) over everything.
func (c *Core) needMonitoringAudit(tok *tokenward.Token) error {
	if err := c.needMonitoring(); err != nil {
		return err
	}
	return c.RequireAudit(tok)
}

func newEntryID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// record audits one of the server's own actions.
func (c *Core) record(ctx context.Context, e *tokenward.AuditEntry) error {
	m := c.Monitoring
	if e.Time.IsZero() {
		e.Time = c.Now().UTC()
	}
	if e.RequestID == "" {
		e.RequestID = newEntryID()
	}
	if e.Outcome == "" {
		e.Outcome = tokenward.OutcomeAllowed
	}
	if m.Record != nil {
		return m.Record(ctx, e)
	}
	c.ObserveAudit(ctx, e)
	return nil
}

// SaveMonitorState stores the monitor's baselines and usage summaries
// (with a Tail, and the seq they count up to).
func (c *Core) SaveMonitorState(ctx context.Context) error {
	m := c.Monitoring
	if m == nil {
		return nil
	}
	var snap []byte
	var err error
	if m.Tail != nil {
		m.Tail.mu.Lock()
		snap, err = m.Monitor.Snapshot()
		m.Tail.mu.Unlock()
	} else {
		snap, err = m.Monitor.Snapshot()
	}
	if err != nil {
		return err
	}
	return c.saveSnapshot(ctx, snap)
}

// saveSnapshot stores snap unless the stored cursor is newer: then another
// leader has acted past it since, and what it saved stays.
func (c *Core) saveSnapshot(ctx context.Context, snap []byte) error {
	m := c.Monitoring
	cursor, err := monitor.SnapshotCursor(snap)
	if err != nil {
		return err
	}
	saved, err := m.Store.SaveMonitorState(ctx, snap, cursor, c.Now().UTC())
	if err != nil {
		return err
	}
	if !saved {
		m.logger().Debug("monitor state not saved: the stored cursor is newer", "cursor", cursor)
	}
	return nil
}

// LoadMonitorState restores the saved snapshot and tells the monitor every
// token record (at start-up).
func (c *Core) LoadMonitorState(ctx context.Context) error {
	m := c.Monitoring
	snap, err := m.Store.MonitorState(ctx)
	switch {
	case tokenward.ErrorCode(err) == tokenward.ENOTFOUND:
	case err != nil:
		return err
	default:
		if err := m.Monitor.Restore(snap); err != nil {
			// A bad snapshot costs the learned baselines, not the server.
			m.logger().Warn("monitor snapshot not restored; learning again", "err", err)
		}
	}
	tokens, err := c.Store.Tokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		m.Monitor.SetToken(t)
	}
	if m.Tail != nil {
		return c.startTail(ctx)
	}
	return nil
}
