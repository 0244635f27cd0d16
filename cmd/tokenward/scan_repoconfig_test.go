//go:build !tokenward_client

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanRepoConfig checks that PATH/.tokenward-scan.toml is loaded and
// announced, and skipped with --no-repo-config or --config.
func TestScanRepoConfig(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"fixtures/fake.env": "AWS_ACCESS_KEY_ID=" + awsKey + "\n",
		"src/deploy.sh":     "export AWS_ACCESS_KEY_ID=" + awsKey + "\n",
		RepoScanConfig:      "[extend]\nuseDefault = true\n[[allowlists]]\npaths = ['''^fixtures/''']\n",
	})
	other := filepath.Join(t.TempDir(), "other.toml")
	if err := os.WriteFile(other, []byte("[extend]\nuseDefault = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		args     []string
		want     []string
		dontWant []string
		note     bool
	}{
		{"repo config", []string{"scan", dir}, []string{"src/deploy.sh"}, []string{"fixtures/"}, true},
		{"no-repo-config", []string{"scan", "--no-repo-config", dir}, []string{"src/deploy.sh", "fixtures/fake.env"}, nil, false},
		{"explicit config wins", []string{"scan", "--config", other, dir}, []string{"src/deploy.sh", "fixtures/fake.env"}, nil, false},
		{"a file target has no repo config", []string{"scan", filepath.Join(dir, "fixtures", "fake.env")}, []string{"fake.env"}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runScanCLI(t, "", tt.args...)
			if code != 1 {
				t.Fatalf("got exit %d (%s); want 1", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("got %q; want a finding in %s", out, w)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(out, w) {
					t.Errorf("got %q; want no finding in %s", out, w)
				}
			}
			if got := strings.Contains(errOut, "note: using the rule config"); got != tt.note {
				t.Errorf("got stderr %q; want the repo-config note: %v", errOut, tt.note)
			}
		})
	}
}

// TestScanThisRepository scans this repository as `tokenward scan .` does
// at its root: it must be clean. A finding here is either a real leak or a
// new fake credential: mark a fake one `tokenward:allow` on its line or add
// its path to .tokenward-scan.toml, with a reason.
func TestScanThisRepository(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, RepoScanConfig)); err != nil {
		t.Skip("no repository config:", err)
	}
	out, errOut, code := runScanCLI(t, "", "scan", root)
	if code != 0 {
		t.Fatalf("got exit %d with\n%s%s\nwant a clean scan", code, out, errOut)
	}
}
