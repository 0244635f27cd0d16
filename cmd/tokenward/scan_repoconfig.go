package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// RepoScanConfig is the rule file `scan` loads from the root of what it
// scans when no --config is given, as gitleaks loads .gitleaks.toml: a
// repository keeps its allowlists (fixtures, rule samples) beside its code.
const RepoScanConfig = ".tokenward-scan.toml"

// repoScanConfig returns the --config list to use: f.configs when given,
// else TARGET/.tokenward-scan.toml when it exists and --no-repo-config is
// not set. Because a committed file can allowlist findings, its use is
// always announced on stderr.
func (m *Main) repoScanConfig(target string, f *scanFlags) []string {
	if len(f.configs) > 0 || f.noRepoConfig || target == "-" {
		return f.configs
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		return nil
	}
	p := filepath.Join(target, RepoScanConfig)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	fmt.Fprintf(m.Stderr, "note: using the rule config %s (--no-repo-config to ignore it)\n", p)
	return []string{p}
}
