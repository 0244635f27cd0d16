//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

// runCLIStdin is runCLI with stdin.
func runCLIStdin(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	code := 0
	if err := m.Run(context.Background(), args); err != nil {
		code = exitCode(err)
		errOut.WriteString("tokenward: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), code
}

// TestTableControlChars: a secret's owner and tags are free text that
// anyone with write on the secret sets; `secret list` (table) must not hand
// their control characters (ANSI/OSC escapes, line breaks) to the reader's
// terminal, nor let them forge table rows.
func TestTableControlChars(t *testing.T) {
	env := startInProcessServer(t)
	if _, errOut, code := runCLI(t, env, "project", "create", "payments", "--envs", "prod"); code != 0 {
		t.Fatalf("project create: %s", errOut)
	}
	owner := "team\x1b[2J\x1b]0;pwned\x07\nFORGED  99  root"
	if _, errOut, code := runCLIStdin(t, env, "fake-value\n", "secret", "set", "payments/prod/KEY", "--owner", owner, "--tag", "a\rb\x9bc"); code != 0 {
		t.Fatalf("secret set: %s", errOut)
	}
	out, _, code := runCLI(t, env, "secret", "list", "payments/prod")
	if code != 0 {
		t.Fatalf("secret list: exit %d", code)
	}
	for _, c := range out {
		if (c < 0x20 && c != '\n') || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			t.Errorf("secret list printed control character %q: %q", c, out)
			break
		}
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("secret list printed %d lines for one secret: %q", n, out)
	}
	// JSON keeps the owner as it is.
	js, _, _ := runCLI(t, env, "secret", "list", "payments/prod", "-o", "json")
	if !strings.Contains(js, `\u001b[2J`) {
		t.Errorf("-o json lost the owner: %s", js)
	}
}

// TestArgumentsNotEchoed: a value or a token given on the command
// line where none belongs is refused without being repeated on stderr
// (a CI log keeps stderr).
func TestArgumentsNotEchoed(t *testing.T) {
	tok, err := tokenward.NewTokenSecret(tokenward.TokenService)
	if err != nil {
		t.Fatal(err)
	}
	const value = "fake_secret_value_for_review"
	for _, tt := range []struct {
		args   []string
		secret string
	}{
		{[]string{"secret", "set", "payments/prod/KEY", value}, value},
		{[]string{"secret", "set", "payments/prod/KEY", "--owner", "x", value}, value},
		{[]string{"token", "whoami", tok}, tok},
		{[]string{"login", tok}, tok},
		{[]string{"project", "list", tok}, tok},
	} {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, nil, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2: %s", code, errOut)
			}
			if strings.Contains(errOut, tt.secret) {
				t.Errorf("stderr repeats the value: %q", errOut)
			}
		})
	}
}

// TestAuditTailControlChars: an audit entry's resource is the
// client's text, unchecked (a refused request's path); `audit tail` rows
// must not pass its control characters to the terminal.
func TestAuditTailControlChars(t *testing.T) {
	var out bytes.Buffer
	x := &call{Main: &Main{Stdout: &out, Getenv: func(string) string { return "" }}}
	if err := x.printTail([]*tokenward.AuditEntry{{Seq: 1, Action: "secret.get", Resource: "p\x1b]0;pwned\x07/e/\nFORGED", Outcome: "denied"}}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.ContainsAny(s, "\x1b\x07") || strings.Count(s, "\n") != 1 {
		t.Errorf("audit tail printed control characters: %q", s)
	}
}

// TestMigrateKeepsCommittedCopy: when the copy into a new SQLite
// data directory is committed but its audit chain does not verify, migrate
// says "the copy is committed" and exits 1; the copy must then exist (as a
// PostgreSQL target's does), not be deleted with its directory.
func TestMigrateKeepsCommittedCopy(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	m := &Main{Getenv: func(string) string { return "" }}
	if _, err := m.initDataDir(ctx, src, storageConfig{}); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(src, dbFileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO audit_entries (seq, time, action, outcome, prev_hash, hash) VALUES (1, 1, 'secret.get', 'allowed', 'x', 'y')`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	dst := filepath.Join(t.TempDir(), "dst")
	_, errOut, code := runCLI(t, nil, "migrate", "--from", src, "--to", dst)
	if code != 1 || !strings.Contains(errOut, "the copy is committed") {
		t.Fatalf("got exit %d, %q; want exit 1 and a committed copy with a broken chain", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dst, dbFileName)); err != nil {
		t.Errorf("migrate said the copy is committed, but it is gone: %v", err)
	}
}

// TestSecretSetNewline: `secret set` drops one trailing newline (\n,
// or \r\n from Windows tools) and nothing else: a value that ends in a
// bare \r keeps it.
func TestSecretSetNewline(t *testing.T) {
	env := startInProcessServer(t)
	if _, errOut, code := runCLI(t, env, "project", "create", "payments", "--envs", "prod"); code != 0 {
		t.Fatalf("project create: %s", errOut)
	}
	for _, tt := range []struct{ in, want string }{
		{"fake-value\n", "fake-value"},
		{"fake-value\r\n", "fake-value"},
		{"fake-value\n\n", "fake-value\n"},
		{"fake-value\r", "fake-value\r"},
		{"fake-value", "fake-value"},
	} {
		if _, errOut, code := runCLIStdin(t, env, tt.in, "secret", "set", "payments/prod/KEY"); code != 0 {
			t.Fatalf("secret set %q: %s", tt.in, errOut)
		}
		if got, _, _ := runCLI(t, env, "secret", "get", "payments/prod/KEY"); got != tt.want {
			t.Errorf("secret set %q stored %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestScanReportMode: `scan -o FILE` and --write-baseline write
// their file with mode 0600 (docs/scanning.md), also over an existing,
// wider file.
func TestScanReportMode(t *testing.T) {
	dir := t.TempDir()
	tok, err := tokenward.NewTokenSecret(tokenward.TokenService)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "leak.txt"), []byte("TOKEN="+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	report, baseline := filepath.Join(dir, "report.json"), filepath.Join(dir, "baseline.json")
	for _, p := range []string{report, baseline} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, code := runCLI(t, nil, "scan", src, "--no-repo-config", "--format", "json", "-o", report, "--write-baseline", baseline)
	if code != 1 {
		t.Fatalf("scan: exit %d, want 1 (findings): %s", code, errOut)
	}
	for _, p := range []string{report, baseline} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %d bytes; want 0600 and the report", filepath.Base(p), fi.Mode().Perm(), fi.Size())
		}
	}
}

// TestAuditExportMode: `audit export -o FILE` leaves FILE at mode
// 0600 (its --help), also over an existing, wider file.
func TestAuditExportMode(t *testing.T) {
	env := startInProcessServer(t)
	p := filepath.Join(t.TempDir(), "trail.jsonl")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, env, "audit", "export", "-o", p) // this server may have no audit trail: the mode is what counts
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit export -o over a 0644 file: %v, %v; want mode 0600", fi.Mode().Perm(), err)
	}
}
