//go:build !tokenward_client

package main

import (
	"strings"
	"testing"
	"time"
)

func TestAuditConfigValidate(t *testing.T) {
	good := auditConfig{FileMaxMB: 100, FileKeep: 5, CheckpointEvery: 1000}
	tests := []struct {
		name string
		edit func(*auditConfig)
		want string // substring of the error; "" for none
	}{
		{"defaults", func(c *auditConfig) {}, ""},
		{"all sinks", func(c *auditConfig) {
			c.File, c.Stdout, c.Webhook, c.WebhookSecretFile, c.Syslog, c.MetricsAddr = "a.jsonl", true, "https://h/x", "s", "udp:127.0.0.1:514", "127.0.0.1:9464"
		}, ""},
		{"file size", func(c *auditConfig) { c.FileMaxMB = 0 }, "--audit-file-max-mb"},
		{"keep", func(c *auditConfig) { c.FileKeep = -1 }, "--audit-file-keep"},
		{"checkpoint", func(c *auditConfig) { c.CheckpointEvery = 0 }, "--audit-checkpoint-every"},
		{"webhook without secret", func(c *auditConfig) { c.Webhook = "https://h/x" }, "go together"},
		{"secret without webhook", func(c *auditConfig) { c.WebhookSecretFile = "s" }, "go together"},
		{"webhook scheme", func(c *auditConfig) { c.Webhook, c.WebhookSecretFile = "ftp://user:pw@h/x", "s" }, "want an http(s) URL"},
		{"syslog form", func(c *auditConfig) { c.Syslog = "127.0.0.1" }, "want network:address"},
		{"syslog network", func(c *auditConfig) { c.Syslog = "sctp:127.0.0.1:514" }, "network must be"},
		{"metrics addr", func(c *auditConfig) { c.MetricsAddr = "9464" }, "--metrics-addr"},
		{"pprof without metrics", func(c *auditConfig) { c.PProf = true }, "--pprof needs --metrics-addr"},
		{"pprof with metrics", func(c *auditConfig) { c.PProf, c.MetricsAddr = true, "127.0.0.1:9464" }, ""},
		{"retention kept", func(c *auditConfig) { c.Retention = "0" }, ""},
		{"retention in days", func(c *auditConfig) { c.Retention = "400d" }, ""},
		{"retention under a day", func(c *auditConfig) { c.Retention = "23h" }, "--audit-retention must be 1d or more"},
		{"retention unreadable", func(c *auditConfig) { c.Retention = "forever" }, "--audit-retention"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v; want an error with %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "pw@"):
				t.Fatalf("error %q echoes the webhook URL", err)
			case tc.name == "retention in days" && c.retention != 400*24*time.Hour:
				t.Fatalf("got retention %v; want 400 days", c.retention)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1h", now.Add(-time.Hour), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), true},
		{"2026-11-01T10:00:00Z", time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), true},
		{"yesterday", time.Time{}, false},
		{"-1h", time.Time{}, false},
	}
	for _, tc := range tests {
		got, err := parseSince(tc.in, now)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q): got %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
