package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/rotate"
)

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
	SaveMonitorState(ctx context.Context, snapshot []byte, at time.Time) error
	// MonitorState returns the saved snapshot, or ENOTFOUND.
	MonitorState(ctx context.Context) ([]byte, error)
	StaleNotices(ctx context.Context) (map[string]time.Time, error)
	SetStaleNotice(ctx context.Context, tokenID string, at time.Time) error
	ClearStaleNotice(ctx context.Context, tokenID string) error
	// ReplaceTokenGrants replaces an active token's grants.
	ReplaceTokenGrants(ctx context.Context, id string, gs tokenward.Grants) error
	// ArchiveEnv moves project/env's secrets into the archive (ECONFLICT if
	// archived already) and returns how many.
	ArchiveEnv(ctx context.Context, a *monitor.Archive) (int, error)
	// RestoreEnv moves them back; ENOTFOUND if not archived.
	RestoreEnv(ctx context.Context, project, env string) (int, error)
	Archives(ctx context.Context) ([]*monitor.Archive, error)
	// PurgeArchives deletes archives due at now and returns them.
	PurgeArchives(ctx context.Context, now time.Time) ([]*monitor.Archive, error)
}

// RetireHook disables what else depends on a retired scope (OIDC bindings,
// rotation policies) and returns one line per thing it disabled (or would,
// when dryRun). env is "" when a whole project retires.
type RetireHook func(ctx context.Context, project, env string, dryRun bool) ([]string, error)

// DefaultRetention is how long archived secrets stay restorable.
const DefaultRetention = 30 * 24 * time.Hour

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
	// Rotations returns the rotation policies for the report; nil takes
	// them from the rotation feature (Core.Rotation) when it is enabled.
	Rotations func(ctx context.Context) ([]monitor.RotationPolicy, error)
	// RetireHooks run when a scope retires, beside the built-in steps
	// (OIDC bindings and rotation policies are disabled by Retire itself).
	RetireHooks []RetireHook
	Logger      *slog.Logger

	mu            sync.Mutex
	expiryAlerted map[string]time.Time
	alerts        sync.WaitGroup
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

// ObserveAudit is called with every audit entry once it is recorded: it
// feeds the monitor, stores and alerts anomalies, suspends tokens, and
// publishes the change events the entry implies. It never fails the
// request: the entry is recorded already.
func (c *Core) ObserveAudit(ctx context.Context, e *tokenward.AuditEntry) {
	m := c.Monitoring
	if m == nil {
		return
	}
	if e.Outcome == tokenward.OutcomeAllowed {
		c.changeOf(ctx, e)
		if e.Action == "secret.read_env" {
			c.countEnvRead(ctx, e)
		}
	}
	for _, an := range m.Monitor.Observe(c.leakSignal(ctx, e)) {
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
// change event an allowed entry stands for.
func (c *Core) changeOf(ctx context.Context, e *tokenward.AuditEntry) {
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
	default:
		return
	}
	m.publish(ev)
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
	list, err := c.Store.Secrets(ctx, project, env)
	if err != nil {
		return
	}
	paths := make([]string, 0, len(list))
	for _, s := range list {
		if t.Grants.Allows(tokenward.ActionRead, project, env, s.Name) {
			paths = append(paths, s.Path())
		}
	}
	c.Monitoring.Monitor.RecordSecretReads(paths, e.Time, e.SourceIP, e.TokenID)
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

// systemRevoke revokes a token on the server's own authority.
func (c *Core) systemRevoke(ctx context.Context, id string) (*tokenward.Token, error) {
	err := c.Store.RevokeToken(ctx, id, c.Now().UTC())
	c.tokens.drop(id)
	if err != nil {
		return nil, err
	}
	t, err := c.Store.Token(ctx, id)
	if err == nil && c.Monitoring != nil {
		c.Monitoring.Monitor.SetToken(t)
	}
	return t, err
}

// suspend revokes a token because an anomaly rule says so, audited, and
// publishes token.suspended.
func (c *Core) suspend(ctx context.Context, id string, rule monitor.RuleID, anomalyID string) error {
	if _, err := c.systemRevoke(ctx, id); err != nil {
		return err
	}
	if err := c.record(ctx, &tokenward.AuditEntry{Action: "token.suspend", Resource: "token:" + id,
		Reason: "anomaly " + string(rule), Meta: map[string]string{"rule": string(rule), "anomaly": anomalyID}}); err != nil {
		return err
	}
	c.Monitoring.publish(monitor.Event{Type: monitor.EventTokenSuspended, Resource: "token:" + id, Reason: string(rule)})
	return nil
}

// needMonitoring is the error of monitoring operations on a server without
// it.
func (c *Core) needMonitoring() error {
	if c.Monitoring == nil {
		return tokenward.Errorf(tokenward.EUNAVAILABLE, "monitoring is not enabled on this server")
	}
	return nil
}

// mayAudit: anomalies, usage of others and the report are security data;
// they need the audit action (or admin) over everything.
func mayAudit(tok *tokenward.Token) error {
	return require(tok, tokenward.ActionAudit, "*", "*", "*")
}

// Anomalies lists anomalies, newest first: the open ones, or all.
func (c *Core) Anomalies(ctx context.Context, tok *tokenward.Token, all bool, limit int) ([]*monitor.Record, error) {
	if err := c.needMonitoring(); err != nil {
		return nil, err
	}
	if err := mayAudit(tok); err != nil {
		return nil, err
	}
	if limit < 0 || limit > 10_000 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "limit must be from 0 to 10000")
	}
	return c.Monitoring.Store.Anomalies(ctx, !all, limit)
}

// AckAnomaly acknowledges an anomaly: it leaves the report's open list.
func (c *Core) AckAnomaly(ctx context.Context, tok *tokenward.Token, id string) (*monitor.Record, error) {
	if err := c.needMonitoring(); err != nil {
		return nil, err
	}
	if err := mayAudit(tok); err != nil {
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

// buildReport computes the hygiene report from the store and the monitor.
func (c *Core) buildReport(ctx context.Context) (*monitor.Report, error) {
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
		Usage: usage, Anomalies: anomalies, Options: m.ReportOptions,
	}), nil
}

// Report returns the hygiene report: expiring, overdue rotations, stale and
// over-privileged tokens, open anomalies.
func (c *Core) Report(ctx context.Context, tok *tokenward.Token) (*monitor.Report, error) {
	if err := c.needMonitoring(); err != nil {
		return nil, err
	}
	if err := mayAudit(tok); err != nil {
		return nil, err
	}
	return c.buildReport(ctx)
}

// HygieneResult says what one hygiene run did.
type HygieneResult struct {
	Notified, Revoked, Cleared, ExpiryAlerts, Purged int
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
	rep, err := c.buildReport(ctx)
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
			if _, err := c.systemRevoke(ctx, step.TokenID); err != nil {
				return res, err
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
	m.mu.Lock()
	if m.expiryAlerted == nil {
		m.expiryAlerted = map[string]time.Time{}
	}
	for _, it := range rep.Expiring {
		key := it.Kind + ":" + it.ID
		if last, ok := m.expiryAlerted[key]; ok && now.Sub(last) < 24*time.Hour {
			continue
		}
		m.expiryAlerted[key] = now
		res.ExpiryAlerts++
		an := monitor.Anomaly{Rule: "expiring", Severity: monitor.SeverityLow, Time: now, Resource: it.ID, Evidence: []monitor.Evidence{},
			Explanation: fmt.Sprintf("%s %s (owner %s) expires %s (in %d days)", it.Kind, it.ID, orNone(it.Owner), it.ExpiresAt.Format(time.DateOnly), it.InDays)}
		if it.Kind == "token" {
			an.TokenID, an.TokenName, an.Resource = it.ID, it.Name, ""
		}
		m.alert(an)
	}
	m.mu.Unlock()
	gone, err := m.Store.PurgeArchives(ctx, now)
	if err != nil {
		return res, err
	}
	for _, a := range gone {
		res.Purged++
		if err := c.record(ctx, &tokenward.AuditEntry{Action: "env.purge", Resource: a.Project + "/" + a.Env, Reason: "retention over", Meta: map[string]string{"secrets": strconv.Itoa(a.Secrets)}}); err != nil {
			return res, err
		}
	}
	m.Monitor.Prune(now)
	return res, c.SaveMonitorState(ctx)
}

// SaveMonitorState stores the monitor's baselines and usage summaries.
func (c *Core) SaveMonitorState(ctx context.Context) error {
	if c.Monitoring == nil {
		return nil
	}
	snap, err := c.Monitoring.Monitor.Snapshot()
	if err != nil {
		return err
	}
	return c.Monitoring.Store.SaveMonitorState(ctx, snap, c.Now().UTC())
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
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
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

// inScope reports whether grant g reaches only into the retired scope:
// its project is the retired one literally and, for an environment, so is
// its environment. A grant with a wildcard there reaches elsewhere too.
func inScope(g tokenward.Grant, project, env string) bool {
	return g.Project == project && (env == "" || g.Env == env)
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
	narrowTo := map[string]tokenward.Grants{}
	for _, t := range tokens {
		if !t.Active(now) {
			continue
		}
		var keep tokenward.Grants
		var drop []string
		for _, g := range t.Grants {
			if inScope(g, project, env) {
				drop = append(drop, g.String())
			} else {
				keep = append(keep, g)
			}
		}
		pt := monitor.PlanToken{ID: t.ID, Name: t.Name, Owner: t.Owner}
		switch {
		case len(drop) == 0:
		case len(keep) == 0:
			plan.Revoke = append(plan.Revoke, pt)
		default:
			plan.Narrow = append(plan.Narrow, monitor.PlanNarrow{PlanToken: pt, Keep: keep.Strings(), Drop: drop})
			narrowTo[t.ID] = keep
		}
	}
	deps, err := c.retireDependents(ctx, tok, project, env, true)
	if err != nil {
		return nil, err
	}
	plan.Disable = append(plan.Disable, deps...)
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

	// Archive first: if it fails (archived already), nothing else changed.
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
	if _, err := c.retireDependents(ctx, tok, project, env, false); err != nil {
		return nil, err
	}
	for _, hook := range m.RetireHooks {
		if _, err := hook(ctx, project, env, false); err != nil {
			return nil, err
		}
	}
	for _, pt := range plan.Revoke {
		if _, err := c.systemRevoke(ctx, pt.ID); err != nil {
			return nil, err
		}
		if err := c.record(ctx, &tokenward.AuditEntry{TokenID: actor, TokenName: tok.Name, Action: "token.revoke", Resource: "token:" + pt.ID, Reason: "retired " + scope}); err != nil {
			return nil, err
		}
	}
	for _, n := range plan.Narrow {
		if err := m.Store.ReplaceTokenGrants(ctx, n.ID, narrowTo[n.ID]); err != nil {
			return nil, err
		}
		c.tokens.drop(n.ID)
		if err := c.record(ctx, &tokenward.AuditEntry{TokenID: actor, TokenName: tok.Name, Action: "token.narrow", Resource: "token:" + n.ID,
			Reason: "retired " + scope, Meta: map[string]string{"dropped": strings.Join(n.Drop, " ")}}); err != nil {
			return nil, err
		}
	}
	plan.Done = true
	return plan, nil
}

// RestoreEnv brings an archived environment's secrets back (tokens revoked
// at retirement stay revoked). Needs admin over project/env.
func (c *Core) RestoreEnv(ctx context.Context, tok *tokenward.Token, project, env string) (int, error) {
	if err := c.needMonitoring(); err != nil {
		return 0, err
	}
	if err := tokenward.ValidateProjectName(project); err != nil {
		return 0, err
	}
	if err := tokenward.ValidateEnvName(env); err != nil {
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

// refuseRetired refuses a write into a retired (archived) environment: a
// secret written there would be live in a scope whose tokens were revoked,
// and would stand in the way of the archive's restore.
func (c *Core) refuseRetired(ctx context.Context, project, env string) error {
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
	out := []*monitor.Archive{}
	for _, a := range all {
		if tok.Grants.Allows(tokenward.ActionAdmin, a.Project, a.Env, "*") {
			out = append(out, a)
		}
	}
	return out, nil
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

// AnnounceRotations publishes secret.rotated for every rotation in the
// recent history of store whose new value became CURRENT (its next step is
// revoke or done) and whose id is not in seen, and adds it to seen. With
// prime it only fills seen (at start-up, so a restart announces nothing
// twice). The server polls it: the rotation machine has no completion hook.
func (c *Core) AnnounceRotations(ctx context.Context, store rotate.Store, seen map[string]bool, prime bool) error {
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
		if prime {
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
