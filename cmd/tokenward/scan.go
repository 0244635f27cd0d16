package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/scan"
	"github.com/tokenward/tokenward/internal/scan/rules"
)

// scanDeps are the server-assisted parts of `scan`, built by newScanDeps
// (scan_server.go).
type scanDeps struct {
	fingerprints scan.FingerprintSource
	remediator   scan.Remediator
}

type scanFlags struct {
	git, staged, remediate, noDecode bool
	noRepoConfig                     bool
	since, format, output, server    string
	tokenFile                        string
	baseline, writeBaseline          string
	configs                          []string
	exitCode, workers                int
	maxSize                          int64
}

func newScanCommand(m *Main) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan [PATH | -]",
		Short: "Find leaked credentials in files, git history, staged changes or stdin",
		Long: `scan looks for credentials with the built-in rule set (or --config files in the
tokenward or gitleaks TOML format) in a directory tree (default .), all git history
(--git [REPO], --since REV for what is new), the staged changes (--staged) or stdin (-).

Exit codes: 0 nothing found, 1 findings (--exit-code), 2 usage or config error.`,
		Example: "  tokenward scan\n  tokenward scan --git --since origin/main --format sarif -o scan.sarif\n  git diff | tokenward scan -",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return unexpectedArg(cmd, args[1])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target := "."
			if len(args) == 1 {
				target = args[0]
			}
			return m.runScan(cmd.Context(), &f, target)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.git, "git", false, "scan all history of the git repository at PATH (all refs)")
	fl.StringVar(&f.since, "since", "", "with --git: scan only objects not reachable from `REV`")
	fl.BoolVar(&f.staged, "staged", false, "scan the lines staged for commit (pre-commit)")
	fl.StringSliceVar(&f.configs, "config", nil, "rule `FILE` (TOML, tokenward or gitleaks format); repeatable (default PATH/"+RepoScanConfig+" if present)")
	fl.BoolVar(&f.noRepoConfig, "no-repo-config", false, "do not load PATH/"+RepoScanConfig)
	fl.StringVar(&f.format, "format", "text", "report format: text, json, sarif, csv or junit")
	fl.StringVarP(&f.output, "output", "o", "", "write the report to `FILE` instead of stdout")
	fl.IntVar(&f.exitCode, "exit-code", 1, "exit code when there are findings")
	fl.StringVar(&f.baseline, "baseline", "", "ignore findings recorded in this JSON report `FILE`")
	fl.StringVar(&f.writeBaseline, "write-baseline", "", "write all findings as a baseline to `FILE`")
	fl.Int64Var(&f.maxSize, "max-size", scan.DefaultMaxFileSize, "skip files larger than this many bytes")
	fl.BoolVar(&f.noDecode, "no-decode", false, "do not decode base64/hex/percent-encoded content")
	fl.IntVar(&f.workers, "workers", 0, "parallel workers (default GOMAXPROCS)")
	fl.StringVar(&f.server, "server", "", "tokenward server `URL` (env: TOKENWARD_ADDR): also report leaks of managed secrets by name")
	fl.StringVar(&f.tokenFile, "token-file", "", "with --server: read the token from this file instead of TOKENWARD_TOKEN")
	fl.BoolVar(&f.remediate, "remediate", false, "revoke leaked tokenward tokens and rotate leaked managed secrets")
	return cmd
}

// loadScanConfig returns the built-in rules, or the --config files (on top
// of the built-in ones when a file says [extend] useDefault = true).
func loadScanConfig(files []string) (*scan.Config, error) {
	builtin, err := scan.LoadFS(rules.FS)
	if err != nil {
		return nil, fmt.Errorf("built-in rules: %w", err)
	}
	if len(files) == 0 {
		return builtin, nil
	}
	user := &scan.Config{}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		c, err := scan.ParseConfig(p, data)
		if err != nil {
			return nil, err
		}
		if err := user.Merge(c); err != nil {
			return nil, err
		}
	}
	if user.UseDefault {
		return scan.Extend(builtin, user), nil
	}
	return scan.Extend(&scan.Config{}, user), nil
}

func (m *Main) runScan(ctx context.Context, f *scanFlags, target string) error {
	switch {
	case f.git && f.staged:
		return usageError("--git and --staged cannot be combined")
	case f.since != "" && !f.git:
		return usageError("--since needs --git")
	case target == "-" && (f.git || f.staged):
		return usageError("stdin (-) cannot be combined with --git or --staged")
	case f.exitCode < 0 || f.exitCode > 125:
		return usageError("--exit-code must be between 0 and 125")
	case f.maxSize <= 0:
		return usageError("--max-size must be positive")
	case f.remediate && f.server == "":
		return usageError("--remediate needs --server")
	}
	if !contains(scan.Formats, f.format) {
		return usageError("--format must be one of %s", strings.Join(scan.Formats, ", "))
	}
	cfg, err := loadScanConfig(m.repoScanConfig(target, f))
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var baseline scan.Baseline
	if f.baseline != "" {
		bf, err := os.Open(f.baseline)
		if err != nil {
			return usageError("--baseline: %v", err)
		}
		baseline, err = scan.ReadBaseline(bf)
		bf.Close()
		if err != nil {
			return usageError("--baseline %s: %v", f.baseline, err)
		}
	}
	opts := scan.Options{MaxFileSize: f.maxSize, Workers: f.workers}
	if f.noDecode {
		opts.DecodeDepth = -1
	}
	var deps scanDeps
	if f.server != "" {
		if deps, err = newScanDeps(m, f); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--server: %w", err)}
		}
		if deps.fingerprints != nil {
			// A fresh key per scan: the fingerprint set is useless after it.
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			set, err := deps.fingerprints.Fingerprints(ctx, key)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("fetching managed fingerprints: %w", cliError(err))}
			}
			opts.Managed, opts.ManagedKey = set, key
		}
	}
	s, err := scan.New(cfg, opts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if slow := s.SlowRules(); len(slow) > 0 {
		fmt.Fprintf(m.Stderr, "note: %d rule(s) have no keywords and run on every file (slow): %s\n",
			len(slow), strings.Join(slow, ", "))
	}
	stats := &scan.Stats{}
	stop := m.startProgress(stats)
	start := time.Now()
	var findings []scan.Finding
	switch {
	case target == "-":
		findings, err = s.ScanReader("stdin", m.Stdin, f.maxSize)
	case f.git:
		findings, err = s.ScanGit(ctx, target, scan.GitOptions{Since: f.since}, stats)
	case f.staged:
		findings, err = s.ScanStaged(ctx, target, scan.GitOptions{}, stats)
	default:
		findings, err = s.ScanDir(ctx, target, stats)
	}
	stop()
	if err != nil {
		if f.git || f.staged || errors.Is(err, os.ErrNotExist) {
			return &exitError{code: 2, err: err}
		}
		return err
	}
	elapsed := time.Since(start)
	if f.writeBaseline != "" {
		if err := writeReportFile(f.writeBaseline, "json", findings, s); err != nil {
			return err
		}
	}
	total := len(findings)
	if baseline != nil {
		findings = baseline.Filter(findings)
	}
	if f.remediate {
		m.remediate(ctx, deps.remediator, findings)
	}
	if f.output != "" {
		err = writeReportFile(f.output, f.format, findings, s)
	} else {
		err = scan.WriteReport(m.Stdout, f.format, findings, scan.ReportInfo{Rules: s.Rules()})
	}
	if err != nil {
		return err
	}
	mb := float64(stats.Bytes.Load()) / 1e6
	summary := fmt.Sprintf("%d finding(s)", len(findings))
	if baseline != nil {
		summary += fmt.Sprintf(" (%d in baseline)", total-len(findings))
	}
	if target != "-" {
		summary += fmt.Sprintf("; scanned %d files, %.1f MB in %s", stats.Files.Load(), mb, elapsed.Round(time.Millisecond))
	}
	fmt.Fprintln(m.Stderr, summary)
	if len(findings) > 0 && f.exitCode != 0 {
		return &exitError{code: f.exitCode}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func writeReportFile(path, format string, fs []scan.Finding, s *scan.Scanner) error {
	var buf bytes.Buffer
	if err := scan.WriteReport(&buf, format, fs, scan.ReportInfo{Rules: s.Rules()}); err != nil {
		return err
	}
	return writeFile0600(path, buf.Bytes())
}

// writeFile0600 writes data to path with mode 0600, also when path exists
// with a wider mode (os.WriteFile keeps an existing file's mode).
func writeFile0600(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// remediate revokes confirmed tokenward tokens and starts rotation of
// leaked managed secrets, each once. Failures are reported, never with the
// token in them.
func (m *Main) remediate(ctx context.Context, r scan.Remediator, fs []scan.Finding) {
	if r == nil {
		fmt.Fprintln(m.Stderr, "remediation: the server offers no remediation")
		return
	}
	done := map[string]bool{}
	for i := range fs {
		f := &fs[i]
		switch {
		case f.ManagedSecret != "":
			if done["s:"+f.ManagedSecret] {
				continue
			}
			done["s:"+f.ManagedSecret] = true
			if err := r.RotateLeakedSecret(ctx, f.ManagedSecret); err != nil {
				fmt.Fprintf(m.Stderr, "remediation: rotating %s failed: %v\n", f.ManagedSecret, err)
				continue
			}
			fmt.Fprintf(m.Stderr, "remediation: rotation of %s started\n", f.ManagedSecret)
		case f.Confirmed && tokenward.TokenChecksumValid(f.Secret()):
			tok := f.Secret()
			h := tokenward.HashToken(tok) // the same token found twice is revoked once
			key := "t:" + string(h[:])
			if done[key] {
				continue
			}
			done[key] = true
			if err := r.ReportLeakedToken(ctx, tok); err != nil {
				msg := strings.ReplaceAll(err.Error(), tok, f.Redacted)
				fmt.Fprintf(m.Stderr, "remediation: revoking token %s at %s:%d failed: %s\n", f.Redacted, f.Path, f.Line, msg)
				continue
			}
			fmt.Fprintf(m.Stderr, "remediation: token %s at %s:%d reported as leaked (the server revokes it and alerts its owner)\n", f.Redacted, f.Path, f.Line)
		}
	}
}

// startProgress shows files, bytes and MB/s on a terminal; it is silent when
// stderr is not a TTY or CI=true. The returned func stops it.
func (m *Main) startProgress(stats *scan.Stats) func() {
	file, ok := m.Stderr.(*os.File)
	if !ok || !isatty.IsTerminal(file.Fd()) || m.Getenv("CI") == "true" {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(file, "\r\033[K")
				return
			case <-t.C:
				mb := float64(stats.Bytes.Load()) / 1e6
				fmt.Fprintf(file, "\r\033[Kscanning: %d files, %.1f MB, %.1f MB/s", stats.Files.Load(), mb,
					mb/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(done); <-finished }
}

const hookMarker = "# tokenward pre-commit hook"

func newHookCommand(m *Main) *cobra.Command {
	hook := &cobra.Command{Use: "hook", Short: "Manage the git pre-commit hook that runs tokenward scan --staged"}
	var force bool
	var repo string
	install := &cobra.Command{
		Use:     "install",
		Short:   "Write .git/hooks/pre-commit running `tokenward scan --staged`",
		Example: "  tokenward hook install\n  tokenward hook install --repo ../payments --force",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := exec.CommandContext(cmd.Context(), "git", "-C", repo, "rev-parse", "--git-path", "hooks").Output() // #nosec G204 -- runs git with fixed arguments
			if err != nil {
				return usageError("%s is not a git repository", repo)
			}
			dir := strings.TrimSpace(string(out))
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(repo, dir)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil { // #nosec G301 -- the git hooks directory; git itself makes it 0755
				return err
			}
			path := filepath.Join(dir, "pre-commit")
			if old, err := os.ReadFile(path); err == nil && !bytes.Contains(old, []byte(hookMarker)) && !force {
				return &exitError{code: 1, err: fmt.Errorf("%s exists and was not written by tokenward; use --force to replace it", path)}
			}
			script := "#!/bin/sh\n" + hookMarker + " (written by `tokenward hook install`).\n" +
				"# It fails the commit when the staged lines hold a credential.\n" +
				"exec tokenward scan --staged\n"
			if err := os.WriteFile(path, []byte(script), 0o755); err != nil { // #nosec G306 -- a git hook must be executable; it holds no secret
				return err
			}
			if err := os.Chmod(path, 0o755); err != nil { // #nosec G302 -- a git hook must be executable; it holds no secret
				return err
			}
			fmt.Fprintf(m.Stdout, "installed %s\n", path)
			return nil
		},
	}
	install.Flags().BoolVar(&force, "force", false, "replace an existing pre-commit hook not written by tokenward")
	install.Flags().StringVar(&repo, "repo", ".", "the git repository")
	hook.AddCommand(install)
	return hook
}
