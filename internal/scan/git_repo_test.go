package scan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func mustGitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Bo", "GIT_AUTHOR_EMAIL=bo@example.org",
		"GIT_COMMITTER_NAME=Bo", "GIT_COMMITTER_EMAIL=bo@example.org",
		"GIT_AUTHOR_DATE=2026-02-03T04:05:06Z", "GIT_COMMITTER_DATE=2026-02-03T04:05:06Z",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestScanGitSkipsAndMerges(t *testing.T) {
	repo := t.TempDir()
	mustGitT(t, repo, "init", "-q", "-b", "main")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("big.txt", strings.Repeat("x", 2048)+"\naws_access_key_id = AKIAZ7VRSQ5TJN2XMGLP\n")
	write("bin.dat", "\x00\x01\x02aws_access_key_id = AKIAZ7VRSQ5TJN2XMGLP\n")
	write("ok.txt", "nothing\n")
	mustGitT(t, repo, "add", ".")
	mustGitT(t, repo, "commit", "-q", "-m", "one")
	mustGitT(t, repo, "checkout", "-q", "-b", "side")
	write("ok.txt", "side\n")
	mustGitT(t, repo, "commit", "-q", "-am", "side")
	mustGitT(t, repo, "checkout", "-q", "main")
	write("ok.txt", "main\n")
	mustGitT(t, repo, "commit", "-q", "-am", "main")
	// A credential that appears only in a merge resolution is attributed to
	// the merge commit.
	cmd := exec.Command("git", "-C", repo, "merge", "-q", "--no-ff", "side")
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Bo", "GIT_AUTHOR_EMAIL=bo@example.org",
		"GIT_COMMITTER_NAME=Bo", "GIT_COMMITTER_EMAIL=bo@example.org", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if err := cmd.Run(); err == nil {
		t.Fatal("got a clean merge; want a conflict to resolve")
	}
	write("ok.txt", "AWS_ACCESS_KEY_ID=AKIAQ3EGZT5NR7WXB2YH\n")
	mustGitT(t, repo, "add", "ok.txt")
	mustGitT(t, repo, "commit", "-q", "-m", "merge")
	merge := mustGitT(t, repo, "rev-parse", "HEAD")

	s := MustTestScanner(t, Options{MaxFileSize: 1024})
	st := &Stats{}
	fs, err := s.ScanGit(context.Background(), repo, GitOptions{}, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Path != "ok.txt" || fs[0].Commit != merge {
		t.Fatalf("got %v (commit %q, log %s); want one finding in ok.txt from the merge (big.txt too large, bin.dat binary)", fs, fs[0].Commit, mustGitT(t, repo, "log", "--oneline", "--graph", "--all"))
	}
	if st.Skipped.Load() < 1 {
		t.Errorf("got %d skipped; want the binary blob counted", st.Skipped.Load())
	}
}

func TestScanGitCommitAllowlist(t *testing.T) {
	repo := t.TempDir()
	mustGitT(t, repo, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(repo, "a.ini"), []byte("aws_access_key_id = AKIAZ7VRSQ5TJN2XMGLP\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustGitT(t, repo, "add", ".")
	mustGitT(t, repo, "commit", "-q", "-m", "one")
	commit := mustGitT(t, repo, "rev-parse", "HEAD")
	for _, tt := range []struct {
		name, commits string
		want          int
	}{{"listed", commit, 0}, {"other", "0000000000000000000000000000000000000001", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			fs := mustScanGitWith(t, "[[rules]]\nid = \"aws\"\nregex = 'AKIA[A-Z2-7]{16}'\nkeywords = [\"akia\"]\n[allowlist]\ncommits = [\""+tt.commits+"\"]\n", repo)
			if len(fs) != tt.want {
				t.Errorf("got %d findings; want %d", len(fs), tt.want)
			}
		})
	}
}

// mustScannerWith returns a scanner with the rules of config (a rule
// file's TOML).
func mustScannerWith(t *testing.T, config string) *Scanner {
	t.Helper()
	cfg, err := ParseConfig("c.toml", []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustScanGitWith scans repo's history with the rules of config.
func mustScanGitWith(t *testing.T, config, repo string) []Finding {
	t.Helper()
	fs, err := mustScannerWith(t, config).ScanGit(context.Background(), repo, GitOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// mustCommit writes files (name, content, name, content…) into repo,
// commits them all and returns the commit's hash.
func mustCommit(t *testing.T, repo, msg string, files ...string) string {
	t.Helper()
	for i := 0; i+1 < len(files); i += 2 {
		if err := os.WriteFile(filepath.Join(repo, files[i]), []byte(files[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustGitT(t, repo, "add", ".")
	mustGitT(t, repo, "commit", "-q", "-m", msg)
	return mustGitT(t, repo, "rev-parse", "HEAD")
}
