//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tokenward/tokenward"
)

// runScanCLI runs the CLI in process and returns stdout, stderr and the
// exit code.
func runScanCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	err := m.Run(context.Background(), args)
	code := 0
	if err != nil {
		code = exitCode(err)
		if msg := err.Error(); msg != "" {
			errb.WriteString("tokenward: " + msg + "\n")
		}
	}
	return out.String(), errb.String(), code
}

func mustScanToken(t *testing.T) string {
	t.Helper()
	tok, err := tokenward.NewTokenSecret(tokenward.TokenService)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const awsKey = "AKIAZ7VRSQ5TJN2XMGLP"

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.org",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.org",
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestScanCLIDirectory(t *testing.T) {
	tok := mustScanToken(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"deploy/ci.yml":  "env:\n  TOKENWARD_TOKEN: " + tok + "\n",
		"config/aws.ini": "aws_access_key_id = " + awsKey + "\n",
		"README.md":      "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
	})
	report := filepath.Join(t.TempDir(), "r.json")
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  []string
	}{
		{"text", []string{"scan", dir}, "", 1, []string{"config/aws.ini:1:21: aws-access-key-id: AKIA****", "deploy/ci.yml:2:20: tokenward-", "(confirmed)"}},
		{"exit code", []string{"scan", "--exit-code", "7", dir}, "", 7, nil},
		{"exit code zero", []string{"scan", "--exit-code", "0", dir}, "", 0, nil},
		{"json to file", []string{"scan", "--format", "json", "--output", report, dir}, "", 1, nil},
		{"stdin", []string{"scan", "-"}, "key: " + awsKey + "\n", 1, []string{"stdin:1:6: aws-access-key-id"}},
		{"stdin clean", []string{"scan", "-"}, "nothing here\n", 0, nil},
		{"bad format", []string{"scan", "--format", "xml", dir}, "", 2, nil},
		{"missing path", []string{"scan", filepath.Join(dir, "nope")}, "", 2, nil},
		{"since without git", []string{"scan", "--since", "HEAD", dir}, "", 2, nil},
		{"git and staged", []string{"scan", "--git", "--staged", dir}, "", 2, nil},
		{"remediate without server", []string{"scan", "--remediate", dir}, "", 2, nil},
		{"server without token", []string{"scan", "--server", "https://tw.example", dir}, "", 2, []string{"no token: set TOKENWARD_TOKEN"}},
		{"server not a URL", []string{"scan", "--server", "tw.example", dir}, "", 2, []string{"--server: want an http:// or https:// URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runScanCLI(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("got exit %d; want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("got output %q; want it to contain %q", out+errOut, w)
				}
			}
			if strings.Contains(out+errOut, tok) || strings.Contains(out+errOut, awsKey) {
				t.Errorf("output holds a secret in plaintext")
			}
		})
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var fs []map[string]any
	if err := json.Unmarshal(data, &fs); err != nil || len(fs) != 2 {
		t.Errorf("got %d findings in the JSON report (err %v); want 2", len(fs), err)
	}
	if bytes.Contains(data, []byte(tok)) || bytes.Contains(data, []byte(awsKey)) {
		t.Errorf("report file holds a secret in plaintext")
	}
}

func TestScanCLIConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bad.toml": "[[rules]]\nid = \"x\"\nregex = '(unclosed'\n",
		"good.toml": "[extend]\nuseDefault = true\n[[rules]]\nid = \"acme\"\nregex = 'acme_[0-9a-f]{16}'\nkeywords = [\"acme_\"]\n" +
			"[[rules]]\nid = \"slow\"\nregex = 'zz_[0-9a-f]{16}'\n",
		"src/a.txt": "t = acme_0123456789abcdef and " + awsKey + "\n",
	})
	_, errOut, code := runScanCLI(t, "", "scan", "--config", filepath.Join(dir, "bad.toml"), filepath.Join(dir, "src"))
	if code != 2 || !strings.Contains(errOut, `bad.toml: rule "x": bad regex`) {
		t.Errorf("got exit %d, %q; want 2 and the file and rule named", code, errOut)
	}
	out, errOut, code := runScanCLI(t, "", "scan", "--config", filepath.Join(dir, "good.toml"), filepath.Join(dir, "src"))
	if code != 1 || !strings.Contains(out, "acme") || !strings.Contains(out, "aws-access-key-id") {
		t.Errorf("got exit %d, %q; want the custom and the built-in rule", code, out)
	}
	if !strings.Contains(errOut, "1 rule(s) have no keywords and run on every file (slow): slow") {
		t.Errorf("got stderr %q; want the keyword-less rule reported as slow", errOut)
	}
}

func TestScanCLIBaseline(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.ini": "aws_access_key_id = " + awsKey + "\n"})
	base := filepath.Join(t.TempDir(), "baseline.json")
	if _, _, code := runScanCLI(t, "", "scan", "--write-baseline", base, dir); code != 1 {
		t.Fatalf("got exit %d; want 1", code)
	}
	if _, errOut, code := runScanCLI(t, "", "scan", "--baseline", base, dir); code != 0 {
		t.Errorf("got exit %d (%s); want 0 with every finding in the baseline", code, errOut)
	}
	writeFiles(t, dir, map[string]string{"b.ini": "aws_access_key_id = AKIAQ3EGZT5NR7WXB2YH\n"})
	out, _, code := runScanCLI(t, "", "scan", "--baseline", base, dir)
	if code != 1 || !strings.Contains(out, "b.ini") || strings.Contains(out, "a.ini") {
		t.Errorf("got exit %d, %q; want only the new finding", code, out)
	}
}

func TestScanCLIGit(t *testing.T) {
	repo := t.TempDir()
	mustGit(t, repo, "init", "-q", "-b", "main")
	writeFiles(t, repo, map[string]string{"app/config.ini": "aws_access_key_id = " + awsKey + "\n"})
	mustGit(t, repo, "add", ".")
	mustGit(t, repo, "commit", "-q", "-m", "add config")
	first := mustGit(t, repo, "rev-parse", "HEAD")
	writeFiles(t, repo, map[string]string{"app/config.ini": "aws_access_key_id = ${AWS_KEY}\n", "copy.ini": "aws_access_key_id = " + awsKey + "\n"})
	mustGit(t, repo, "add", ".")
	mustGit(t, repo, "commit", "-q", "-m", "remove key, copy it")
	second := mustGit(t, repo, "rev-parse", "HEAD")
	mustGit(t, repo, "checkout", "-q", "-b", "feature")
	writeFiles(t, repo, map[string]string{"feature.env": "x\nAWS_ACCESS_KEY_ID=AKIAQ3EGZT5NR7WXB2YH\n"})
	mustGit(t, repo, "add", ".")
	mustGit(t, repo, "commit", "-q", "-m", "feature")
	third := mustGit(t, repo, "rev-parse", "HEAD")
	mustGit(t, repo, "checkout", "-q", "main")

	out, errOut, code := runScanCLI(t, "", "scan", "--git", "--format", "json", repo)
	if code != 1 {
		t.Fatalf("got exit %d (%s); want 1", code, errOut)
	}
	var fs []struct {
		Path, Commit, Author, Email string
		Line                        int
	}
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		got[f.Path] = f.Commit
		if f.Author != "Ada" || f.Email != "ada@example.org" {
			t.Errorf("%s: got author %q <%s>; want Ada <ada@example.org>", f.Path, f.Author, f.Email)
		}
	}
	want := map[string]string{"app/config.ini": first, "copy.ini": second, "feature.env": third}
	for p, c := range want {
		if got[p] != c {
			t.Errorf("%s: got commit %q; want %q", p, got[p], c)
		}
	}
	if len(fs) != 3 {
		t.Errorf("got %d findings; want 3 (one blob at two paths, one on a branch)", len(fs))
	}
	out, _, code = runScanCLI(t, "", "scan", "--git", "--since", second, repo)
	if code != 1 || !strings.Contains(out, "feature.env") || strings.Contains(out, "config.ini") {
		t.Errorf("--since: got exit %d, %q; want only the feature branch finding", code, out)
	}
	if _, errOut, code := runScanCLI(t, "", "scan", "--git", "--since", "--output=x", repo); code != 2 {
		t.Errorf("got exit %d (%s); want 2 for an option-like revision", code, errOut)
	}
	if _, _, code := runScanCLI(t, "", "scan", "--git", t.TempDir()); code != 2 {
		t.Errorf("got exit %d; want 2 outside a repository", code)
	}
}

func TestScanCLIStagedAndHook(t *testing.T) {
	repo := t.TempDir()
	mustGit(t, repo, "init", "-q", "-b", "main")
	writeFiles(t, repo, map[string]string{"old.ini": "aws_access_key_id = " + awsKey + "\n"})
	mustGit(t, repo, "add", ".")
	mustGit(t, repo, "commit", "-q", "-m", "old")
	if _, _, code := runScanCLI(t, "", "scan", "--staged", repo); code != 0 {
		t.Errorf("nothing staged: got exit %d; want 0", code)
	}
	writeFiles(t, repo, map[string]string{"old.ini": "aws_access_key_id = " + awsKey + "\nname = x\n",
		"new.env": "a=1\nAWS_ACCESS_KEY_ID=AKIAQ3EGZT5NR7WXB2YH\n"})
	mustGit(t, repo, "add", ".")
	out, _, code := runScanCLI(t, "", "scan", "--staged", repo)
	if code != 1 || !strings.Contains(out, "new.env:2:") || strings.Contains(out, "old.ini") {
		t.Errorf("got exit %d, %q; want only the added line of new.env", code, out)
	}

	hooks := filepath.Join(repo, ".git", "hooks")
	hook := filepath.Join(hooks, "pre-commit")
	if out, errOut, code := runScanCLI(t, "", "hook", "install", "--repo", repo); code != 0 {
		t.Fatalf("got exit %d, %s %s; want 0", code, out, errOut)
	}
	data, err := os.ReadFile(hook)
	if err != nil || !strings.Contains(string(data), "tokenward scan --staged") {
		t.Fatalf("got hook %q, %v; want it to run tokenward scan --staged", data, err)
	}
	if fi, _ := os.Stat(hook); fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("got mode %v; want executable", fi.Mode())
	}
	if _, _, code := runScanCLI(t, "", "hook", "install", "--repo", repo); code != 0 {
		t.Errorf("reinstall over our own hook: got exit %d; want 0", code)
	}
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nmake lint\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runScanCLI(t, "", "hook", "install", "--repo", repo); code == 0 || !strings.Contains(errOut, "--force") {
		t.Errorf("foreign hook: got exit %d, %q; want a refusal naming --force", code, errOut)
	}
	if _, _, code := runScanCLI(t, "", "hook", "install", "--force", "--repo", repo); code != 0 {
		t.Errorf("--force: got exit %d; want 0", code)
	}
}

type fakeFingerprints struct{ values map[string]string } // path → value

func (f fakeFingerprints) Fingerprints(_ context.Context, key []byte) (map[[32]byte]string, error) {
	out := map[[32]byte]string{}
	for path, v := range f.values {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(v))
		var sum [32]byte
		copy(sum[:], m.Sum(nil))
		out[sum] = path
	}
	return out, nil
}

type recordingRemediator struct {
	mu      sync.Mutex
	tokens  []string
	secrets []string
}

func (r *recordingRemediator) ReportLeakedToken(_ context.Context, tok string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens = append(r.tokens, tok)
	return nil
}

func (r *recordingRemediator) RotateLeakedSecret(_ context.Context, path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, path)
	return nil
}

func TestScanCLIServerAssisted(t *testing.T) {
	tok := mustScanToken(t)
	managed := "zq-7Hs91-internal-db-pass"
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"docker-compose.yml": "services:\n  db:\n    environment:\n      DB_PASS: " + managed + "\n",
		"ci.sh":              "export TW=" + tok + "\n",
	})
	rem := &recordingRemediator{}
	old := newScanDeps
	t.Cleanup(func() { newScanDeps = old })
	var gotServer string
	newScanDeps = func(m *Main, f *scanFlags) (scanDeps, error) {
		gotServer = f.server
		return scanDeps{fingerprints: fakeFingerprints{map[string]string{"prod/db/password": managed}}, remediator: rem}, nil
	}
	out, errOut, code := runScanCLI(t, "", "scan", "--server", "https://tw.internal", "--remediate", dir)
	if code != 1 {
		t.Fatalf("got exit %d (%s); want 1", code, errOut)
	}
	if gotServer != "https://tw.internal" {
		t.Errorf("got server %q; want the --server URL", gotServer)
	}
	if !strings.Contains(out, "docker-compose.yml:4:16: tokenward-managed-secret") || !strings.Contains(out, "managed secret prod/db/password") {
		t.Errorf("got %q; want the managed secret reported by path", out)
	}
	if len(rem.tokens) != 1 || rem.tokens[0] != tok {
		t.Errorf("got %d revoked tokens; want the leaked one", len(rem.tokens))
	}
	if len(rem.secrets) != 1 || rem.secrets[0] != "prod/db/password" {
		t.Errorf("got rotations %v; want [prod/db/password]", rem.secrets)
	}
	if strings.Contains(out+errOut, managed) || strings.Contains(out+errOut, tok) {
		t.Errorf("output holds a secret in plaintext")
	}
}

// TestScanScripts runs the scan and hook scripts in testdata/scan against
// the real binary (git runs it from the installed hook).
func TestScanScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/scan",
		Setup: func(e *testscript.Env) error {
			e.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
			e.Setenv("HOME", e.WorkDir)
			e.Setenv("CI", "true")
			return nil
		},
	})
}
