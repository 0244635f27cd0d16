//go:build !tokenward_client

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// TestMonitorConfig checks the monitoring flags: each bad value gives a
// clear error that never echoes a webhook URL (Slack URLs are secrets) or
// a webhook secret.
func TestMonitorConfig(t *testing.T) {
	dir := t.TempDir()
	db := sqlite.NewDB(filepath.Join(dir, "tokenward.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := &serverRun{db: sqliteStorage{db}, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const secret = "s3cr3t-hook-key-0123456789"
	const slackURL = "https://hooks.slack.example/services/T000/B000/XXXXSECRETPATH"
	good := filepath.Join(dir, "hook.secret")
	short := filepath.Join(dir, "short.secret")
	os.WriteFile(good, []byte(secret+"\n"), 0o600)
	os.WriteFile(short, []byte("tooshort"), 0o600)
	base := func() monitorConfig {
		return monitorConfig{AlertFormat: "signed", StaleAfter: "30d", StaleNotice: "14d", ExpiryWindow: "14d", Retention: "30d", TokenRetention: "90d", HygieneInterval: "1h"}
	}
	for _, tc := range []struct {
		name string
		edit func(*monitorConfig)
		want string // "" = ok
	}{
		{"defaults", func(c *monitorConfig) {}, ""},
		{"signed alerts", func(c *monitorConfig) {
			c.AlertWebhooks, c.AlertSecretFile = []string{"https://alerts.example/tw"}, good
		}, ""},
		{"slack alerts need no secret", func(c *monitorConfig) { c.AlertWebhooks, c.AlertFormat = []string{slackURL}, "slack" }, ""},
		{"events", func(c *monitorConfig) {
			c.EventWebhooks, c.EventSecretFile = []string{"https://events.example/tw"}, good
		}, ""},
		{"policy", func(c *monitorConfig) { c.Policy = []string{"new_network=suspend", "leak_reported=alert"} }, ""},
		{"signed without secret", func(c *monitorConfig) { c.AlertWebhooks = []string{slackURL} }, "--alert-secret-file is required"},
		{"short secret", func(c *monitorConfig) { c.AlertWebhooks, c.AlertSecretFile = []string{slackURL}, short }, "at least 16 bytes"},
		{"missing secret file", func(c *monitorConfig) {
			c.EventWebhooks, c.EventSecretFile = []string{slackURL}, filepath.Join(dir, "none")
		}, "--events-secret-file"},
		{"bad format", func(c *monitorConfig) { c.AlertWebhooks, c.AlertFormat = []string{slackURL}, "teams" }, "--alert-format must be slack or signed"},
		{"bad url", func(c *monitorConfig) { c.AlertWebhooks, c.AlertFormat = []string{"ftp://x/SECRETPATH"}, "slack" }, "--alert-webhook: want an http(s) URL"},
		{"bad event url", func(c *monitorConfig) { c.EventWebhooks, c.EventSecretFile = []string{"not a url SECRETPATH"}, good }, "--events-webhook: want an http(s) URL"},
		{"bad policy rule", func(c *monitorConfig) { c.Policy = []string{"nope=suspend"} }, "--monitor-policy"},
		{"bad policy action", func(c *monitorConfig) { c.Policy = []string{"new_network=ignore"} }, "--monitor-policy"},
		{"bad stale", func(c *monitorConfig) { c.StaleAfter = "soon" }, "--stale-after"},
		{"bad retention", func(c *monitorConfig) { c.Retention = "0d" }, "--retention"},
		{"token retention 0 keeps tokens", func(c *monitorConfig) { c.TokenRetention = "0" }, ""},
		{"bad token retention", func(c *monitorConfig) { c.TokenRetention = "0d" }, "--token-retention"},
		{"tiny interval", func(c *monitorConfig) { c.HygieneInterval = "10ms" }, "--hygiene-interval must be at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(&cfg)
			mg, _, err := cfg.monitoring(r)
			if mg != nil {
				defer mg.Events.Close(context.Background())
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v; want an error with %q", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "SECRETPATH") || strings.Contains(err.Error(), secret)) {
				t.Fatalf("error echoes a webhook URL or secret: %v", err)
			}
			if tc.name == "policy" && mg != nil {
				// The policy reached the monitor: a leak report only alerts now.
				if got := mg.Monitor.Observe(leakEntry()); len(got) != 1 || got[0].Suspend {
					t.Fatalf("got %+v; want one leak_reported anomaly without suspension", got)
				}
			}
		})
	}
}

func leakEntry() *tokenward.AuditEntry {
	return &tokenward.AuditEntry{Seq: 1, Time: timeNow().UTC(), Action: monitor.ActionReportLeak, Resource: "token:tok_leaked", Outcome: tokenward.OutcomeAllowed}
}

// TestFirstHygiene: a new leader runs its first hygiene pass within a
// minute, whatever the interval, so that a server restarted (or a
// leadership moved) more often than the interval still runs it.
func TestFirstHygiene(t *testing.T) {
	for _, c := range []struct{ interval, want time.Duration }{
		{time.Second, time.Second},
		{30 * time.Second, 30 * time.Second},
		{time.Minute, time.Minute},
		{time.Hour, time.Minute},
		{24 * time.Hour, time.Minute},
	} {
		if got := firstHygiene(c.interval); got != c.want {
			t.Errorf("firstHygiene(%s) = %s; want %s", c.interval, got, c.want)
		}
	}
}
