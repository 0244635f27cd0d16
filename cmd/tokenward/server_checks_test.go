//go:build !tokenward_client

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerRefusesATLSKeyOthersCanRead: --tls-key is a private key, held
// to the master key's and the audit key's rule: a file that group or others
// can read is refused at start, before the store or the master key is
// touched (the data directory here does not exist).
func TestServerRefusesATLSKeyOthersCanRead(t *testing.T) {
	certFile, keyFile, _ := writeTestCert(t, t.TempDir())
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "absent")
	_, errOut, code := runCLI(t, nil, "server", "--data-dir", dir, "--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	if code == 0 || !strings.Contains(errOut, "--tls-key") || !strings.Contains(errOut, "want 0600") {
		t.Errorf("--tls-key mode 0644: got exit %d, %q; want an error naming --tls-key and 0600", code, errOut)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the data directory %s was made; want nothing touched", dir)
	}
}

// TestServerFeatureFlagsCheckedBeforeAnythingOpens: a bad feature flag is
// a usage error (exit 2) before the server reads its master key or opens
// its store: with a data directory that does not exist, the flag's error is
// the answer, not the missing master key.
func TestServerFeatureFlagsCheckedBeforeAnythingOpens(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"audit", []string{"--audit-file-max-mb", "0"}, "--audit-file-max-mb"},
		{"audit webhook secret", []string{"--audit-webhook", "https://audit.invalid/in", "--audit-webhook-secret-file", short}, "--audit-webhook-secret-file"},
		{"audit journal on postgres", []string{"--audit-sync", "journal", "--storage", "postgres://tw@db.invalid:5432/tw"}, "--audit-sync journal is for SQLite"},
		{"oidc", []string{"--oidc-max-ttl", "0s"}, "--oidc-max-ttl"},
		{"monitor duration", []string{"--hygiene-interval", "10ms"}, "--hygiene-interval"},
		{"monitor policy", []string{"--monitor-policy", "nope=alert"}, "--monitor-policy"},
		{"monitor alert format", []string{"--alert-webhook", "https://alerts.invalid/x", "--alert-format", "xml"}, "--alert-format"},
		{"monitor events secret", []string{"--events-webhook", "https://events.invalid/x", "--events-secret-file", short}, "--events-secret-file"},
		{"rotation", []string{"--rotation-concurrency", "0"}, "--rotation-concurrency"},
		{"dynamic", []string{"--lease-sweep-interval", "1ms"}, "--lease-sweep-interval"},
		{"database gateway", []string{"--gateway-db-peer-id", "-1"}, "--gateway-db-peer-id"},
		{"audit retention", []string{"--audit-retention", "1h"}, "--audit-retention"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "absent")
			args := append([]string{"server", "--data-dir", dir, "--addr", "127.0.0.1:0"}, tc.args...)
			_, errOut, code := runCLI(t, nil, args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("%v: got exit %d, %q; want exit 2 naming %s", tc.args, code, errOut, tc.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("the data directory %s was made; want nothing touched", dir)
			}
		})
	}
}
