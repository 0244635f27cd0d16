//go:build !tokenward_client

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/webhook"
)

// monitorConfig is the server's monitoring configuration, from flags.
type monitorConfig struct {
	AlertWebhooks   []string
	AlertFormat     string
	AlertSecretFile string
	EventWebhooks   []string
	EventSecretFile string
	Policy          []string // RULE=alert|suspend
	StaleAfter      string
	StaleNotice     string
	StaleRevoke     bool
	ExpiryWindow    string
	Retention       string
	TokenRetention  string
	HygieneInterval string
}

func (c *monitorConfig) register(f *pflag.FlagSet) {
	f.StringArrayVar(&c.AlertWebhooks, "alert-webhook", nil, "send anomaly alerts to this URL (repeatable)")
	f.StringVar(&c.AlertFormat, "alert-format", "signed", "alert payload: slack (Slack incoming webhook) or signed (JSON with "+webhook.SignatureHeader+")")
	f.StringVar(&c.AlertSecretFile, "alert-secret-file", "", "file holding the HMAC secret (16+ bytes) for --alert-format signed")
	f.StringArrayVar(&c.EventWebhooks, "events-webhook", nil, "send signed change events (secret created/updated/rotated/retired, token revoked/suspended) to this URL (repeatable)")
	f.StringVar(&c.EventSecretFile, "events-secret-file", "", "file holding the HMAC secret (16+ bytes) for --events-webhook")
	f.StringArrayVar(&c.Policy, "monitor-policy", nil, "RULE=alert|suspend per anomaly rule (repeatable; default: suspend on jit_second_source and leak_reported)")
	f.StringVar(&c.StaleAfter, "stale-after", "30d", "a token unused this long is stale: listed and its owner alerted")
	f.StringVar(&c.StaleNotice, "stale-notice", "14d", "notice period after the owner is told, before --stale-revoke revokes")
	f.BoolVar(&c.StaleRevoke, "stale-revoke", false, "revoke stale tokens once the notice period passes unanswered")
	f.StringVar(&c.ExpiryWindow, "expiry-window", "14d", "alert on tokens and secrets expiring within this window")
	f.StringVar(&c.Retention, "retention", "30d", "how long retired environments stay restorable before they are purged")
	f.StringVar(&c.TokenRetention, "token-retention", "90d", "how long revoked and expired tokens stay listed before the hygiene job deletes them (their audit entries stay); 0 keeps them")
	f.StringVar(&c.HygieneInterval, "hygiene-interval", "1h", "how often the hygiene job runs (stale tokens, expiry alerts, purges, monitor snapshot)")
}

// readHookSecret reads a webhook HMAC secret from a file. The secret never
// reaches a log or an error.
func readHookSecret(flag, path string) ([]byte, error) {
	if path == "" {
		return nil, usageError("%s is required for signed webhooks", flag)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	s := []byte(strings.TrimSpace(string(b)))
	if len(s) < 16 {
		return nil, usageError("%s: the secret must be at least 16 bytes", flag)
	}
	return s, nil
}

// checkHookURL validates a webhook URL without echoing it (Slack URLs hold
// their secret in the path).
func checkHookURL(flag, raw string) error {
	if webhook.CheckURL(raw) != nil {
		return usageError("%s: want an http(s) URL", flag)
	}
	return nil
}

// monitorSettings are monitorConfig's flags, checked and parsed (webhook
// secrets read), before the server opens anything.
type monitorSettings struct {
	staleAfter, staleNotice, expiry, retention, tokenRetention, interval time.Duration
	cfg                                                                  monitor.Config
	alertHooks, eventHooks                                               []monitor.Webhook
}

// monitoring builds the engine's Monitoring from the flags.
func (c *monitorConfig) monitoring(r *serverRun) (*core.Monitoring, time.Duration, error) {
	s, err := c.check()
	if err != nil {
		return nil, 0, err
	}
	return c.build(r, s)
}

// check checks and parses the flags; it opens nothing.
func (c *monitorConfig) check() (monitorSettings, error) {
	var s monitorSettings
	for flag, p := range map[string]struct {
		v string
		d *time.Duration
	}{
		"--stale-after": {c.StaleAfter, &s.staleAfter}, "--stale-notice": {c.StaleNotice, &s.staleNotice},
		"--expiry-window": {c.ExpiryWindow, &s.expiry}, "--retention": {c.Retention, &s.retention},
		"--hygiene-interval": {c.HygieneInterval, &s.interval}, "--token-retention": {c.TokenRetention, &s.tokenRetention},
	} {
		if flag == "--token-retention" && p.v == "0" {
			continue
		}
		d, err := parseDuration(p.v)
		if err != nil {
			return s, usageError("%s: %v", flag, err)
		}
		*p.d = d
	}
	if s.interval < time.Second {
		return s, usageError("--hygiene-interval must be at least 1s")
	}
	s.cfg = monitor.Config{Policy: map[monitor.RuleID]monitor.Action{}}
	for _, p := range c.Policy {
		rule, action, ok := strings.Cut(p, "=")
		known := false
		for _, r := range monitor.Rules {
			known = known || string(r) == rule
		}
		if !ok || !known || (action != string(monitor.ActionAlert) && action != string(monitor.ActionSuspend)) {
			return s, usageError("--monitor-policy %q: want RULE=alert|suspend with a rule of %v", p, monitor.Rules)
		}
		s.cfg.Policy[monitor.RuleID(rule)] = monitor.Action(action)
	}
	if len(c.AlertWebhooks) > 0 {
		format := monitor.Format(c.AlertFormat)
		var secret []byte
		var err error
		switch format {
		case monitor.FormatSlack:
		case monitor.FormatSigned:
			if secret, err = readHookSecret("--alert-secret-file", c.AlertSecretFile); err != nil {
				return s, err
			}
		default:
			return s, usageError("--alert-format must be slack or signed")
		}
		for _, u := range c.AlertWebhooks {
			if err := checkHookURL("--alert-webhook", u); err != nil {
				return s, err
			}
			w := monitor.Webhook{URL: u, Format: format, Secret: secret}
			if err := w.Validate(); err != nil {
				return s, usageError("--alert-webhook: %s", tokenward.ErrorMessage(err))
			}
			s.alertHooks = append(s.alertHooks, w)
		}
	}
	if len(c.EventWebhooks) > 0 {
		secret, err := readHookSecret("--events-secret-file", c.EventSecretFile)
		if err != nil {
			return s, err
		}
		for _, u := range c.EventWebhooks {
			if err := checkHookURL("--events-webhook", u); err != nil {
				return s, err
			}
			s.eventHooks = append(s.eventHooks, monitor.Webhook{URL: u, Format: monitor.FormatSigned, Secret: secret})
		}
	}
	return s, nil
}

// build builds the engine's Monitoring from the checked flags.
func (c *monitorConfig) build(r *serverRun, s monitorSettings) (*core.Monitoring, time.Duration, error) {
	mon, err := monitor.New(s.cfg)
	if err != nil {
		return nil, 0, err
	}
	logger := r.logger.WithGroup("monitor")
	sender := monitor.NewSender(logger)
	alerter := &monitor.Alerter{Sender: sender, Hooks: s.alertHooks}
	events := monitor.NewEvents(sender, s.eventHooks, logger)
	if err := events.Open(); err != nil {
		return nil, 0, usageError("--events-webhook: %s", tokenward.ErrorMessage(err))
	}
	return &core.Monitoring{
		Store: r.db, Monitor: mon, Alerter: alerter, Events: events, Logger: logger,
		ReportOptions: monitor.ReportOptions{StaleAfter: s.staleAfter, ExpiryWindow: s.expiry},
		StalePolicy:   monitor.StalePolicy{NoticePeriod: s.staleNotice, Revoke: c.StaleRevoke},
		Retention:     s.retention, TokenRetention: s.tokenRetention,
	}, s.interval, nil
}

// rotationPoll is how often finished rotations are looked for, to publish
// secret.rotated.
const rotationPoll = 2 * time.Second

// announceCatchUp is how far back a new leader of several servers
// announces finished rotations: the old leader may have died before it
// polled them.
const announceCatchUp = 5 * rotationPoll

// firstHygieneAfter bounds the wait of a new leader for its first hygiene
// pass: long enough for the uses other servers batch (every 2 s) to be
// stored and the monitor to have caught up, short enough that a server
// restarted, or a leadership moved, more often than the interval (1 h by
// default) still runs it; it did not before, so stale tokens were never
// revoked and the monitor's snapshot never saved.
const firstHygieneAfter = time.Minute

// firstHygiene is how long a new leader waits for its first hygiene pass.
func firstHygiene(interval time.Duration) time.Duration { return min(interval, firstHygieneAfter) }

// leaderMonitorJobs runs the hygiene job every interval (the first time
// after firstHygiene) and announces
// finished rotations (secret.rotated) every rotationPoll, until ctx ends:
// the leader's part of monitoring. The rotation machine has no completion
// hook, and runs on whichever server was asked, so announcements come
// from polling the shared history, primed when the leadership begins.
func leaderMonitorJobs(ctx context.Context, r *serverRun, interval time.Duration, shared bool) {
	mg := r.core.Monitoring
	rotations := r.db.Rotations()
	seen := map[string]bool{}
	primeBefore := r.lead.wonAt()
	if shared {
		primeBefore = primeBefore.Add(-announceCatchUp)
	}
	announce := func() {
		if err := r.core.AnnounceRotations(ctx, rotations, seen, primeBefore); err != nil && ctx.Err() == nil {
			mg.Logger.Warn("announce rotations", "err", err)
		}
	}
	announce()
	primeBefore = time.Time{}
	t := time.NewTimer(firstHygiene(interval))
	defer t.Stop()
	poll := time.NewTicker(rotationPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			announce()
		case <-t.C:
			t.Reset(interval)
			res, err := r.core.RunHygiene(ctx)
			if err != nil {
				if ctx.Err() == nil {
					mg.Logger.Error("hygiene job", "err", err)
				}
				continue
			}
			mg.Logger.Debug("hygiene job", "notified", res.Notified, "revoked", res.Revoked, "cleared", res.Cleared, "expiry_alerts", res.ExpiryAlerts, "purged", res.Purged, "purge_held", res.PurgeHeld, "tokens_pruned", res.TokensPruned)
		}
	}
}

// monitorMetrics writes the monitor's counters at scrape time. Labels are
// rule ids and event outcomes only: never a secret or token name.
func monitorMetrics(mon *monitor.Monitor, events *monitor.Events) func(io.Writer) {
	return func(w io.Writer) {
		anomalies := make(map[string]float64, len(monitor.Rules))
		for _, rule := range monitor.Rules {
			anomalies[string(rule)] = float64(mon.AnomalyCount(rule))
		}
		httpapi.WriteFamily(w, "tokenward_anomalies_total", httpapi.CounterType, "Anomalies detected since the server started, by rule.", "rule", anomalies)
		st := events.Stats()
		httpapi.WriteFamily(w, "tokenward_change_events_total", httpapi.CounterType, "Change events by outcome: published, delivered, failed, dropped_queue_full, dropped_subscribers.", "outcome", map[string]float64{
			"published": float64(st.Published), "delivered": float64(st.Delivered), "failed": float64(st.Failed),
			"dropped_queue_full": float64(st.DroppedQueueFull), "dropped_subscribers": float64(st.DroppedSubscribers)})
		httpapi.WriteValue(w, "tokenward_monitor_observed_total", httpapi.CounterType, "Audit entries the monitor observed since the server started.", float64(mon.Observed()))
		httpapi.WriteValue(w, "tokenward_monitor_tracked_tokens", httpapi.GaugeType, "Tokens the monitor keeps baselines for.", float64(mon.TrackedTokens()))
	}
}

// monitorServerFeature wires usage monitoring, anomalies, alerts, change
// events, the hygiene job and retirement into the server. It must come
// after the audit feature in serverFeatures: it wraps api.Audit, so the
// monitor sees each entry once the audit trail has recorded it.
func monitorServerFeature(m *Main, f *pflag.FlagSet) (func(*serverConfig) error, func(ctx context.Context, r *serverRun) error) {
	var cfg monitorConfig
	cfg.register(f)
	var settings monitorSettings
	check := func(*serverConfig) (err error) {
		settings, err = cfg.check()
		return err
	}
	return check, func(ctx context.Context, r *serverRun) error {
		mg, interval, err := cfg.build(r, settings)
		if err != nil {
			return err
		}
		r.core.Monitoring = mg
		// Servers sharing PostgreSQL tail its audit table instead of
		// observing in line, so each sees every server's traffic.
		pg, shared := r.db.(pgStorage)
		if shared {
			mg.Tail = core.NewAuditTail(pg)
		}
		if err := r.core.LoadMonitorState(ctx); err != nil {
			mg.Events.Close(context.Background())
			return err
		}
		prev := r.api.Audit
		hook := func(ctx context.Context, e *tokenward.AuditEntry) error {
			if prev != nil {
				if err := prev(ctx, e); err != nil {
					return err
				}
			}
			r.core.ObserveAudit(ctx, e)
			return nil
		}
		r.api.Audit = hook
		mg.Record = hook

		if r.metrics != nil {
			r.metrics.OnScrape(monitorMetrics(mg.Monitor, mg.Events))
		}

		// Event streams never end on their own: end them when shutdown
		// begins (ctx is cancelled by SIGTERM/SIGINT before the HTTP server
		// drains), or the drain would wait for every `events tail`.
		go func() {
			<-ctx.Done()
			r.api.StopStreams()
		}()

		// Hygiene and secret.rotated announcements run once across the
		// servers sharing a database: on the leader.
		r.lead.add("hygiene and rotation announcements", func(ctx context.Context) {
			leaderMonitorJobs(ctx, r, interval, shared)
		})
		if shared {
			// The leader acts on what every server's tail reads, and
			// saves the snapshot with its cursor when it steps down; a
			// leader that lost the lock stops at once and saves nothing
			// (the next one may have saved a newer cursor already).
			r.lead.add("anomaly actions", func(ctx context.Context) {
				if err := r.core.LeadAuditTail(ctx, postgres.ErrLeadershipLost); err != nil {
					mg.Logger.Error("save monitor state at the end of the leadership", "err", err)
				}
			})
		}
		r.onClose(func() {
			// With a tail, the leader saved the snapshot when it stopped
			// leading (before the closers run); the others do not save.
			if !shared {
				if err := r.core.SaveMonitorState(context.Background()); err != nil {
					mg.Logger.Error("save monitor state", "err", err)
				}
			}
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			mg.Events.Close(cctx)
			mg.Wait()
		})
		if shared {
			// Registered last, so it stops first: before the events close.
			tctx, stopTail := context.WithCancel(context.WithoutCancel(ctx))
			tailDone := make(chan struct{})
			go func() {
				defer close(tailDone)
				r.core.RunAuditTail(tctx, core.DefaultTailInterval)
			}()
			r.onClose(func() { stopTail(); <-tailDone })
		}
		return nil
	}
}
