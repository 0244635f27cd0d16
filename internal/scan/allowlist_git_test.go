package scan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// An AND allowlist with commits suppresses a finding in --git mode when the
// commit that added it is listed and every other check matches; commits are
// known only after attribution, the other checks only while scanning.
func TestScanGitCommitAllowlistAND(t *testing.T) {
	repo := t.TempDir()
	mustGitT(t, repo, "init", "-q", "-b", "main")
	key := func(k string) string { return "aws_access_key_id = " + k + "\n" }
	c1 := mustCommit(t, repo, "one", "a.ini", key(reviewKey1), "b.ini", key(reviewKey2))
	c2 := mustCommit(t, repo, "two", "c.ini", key(reviewKey1)) // a.ini's blob, added again by another commit
	name := map[string]string{c1: "c1", c2: "c2"}

	const rule = "[[rules]]\nid = \"aws\"\nregex = 'AKIA[A-Z2-7]{16}'\nkeywords = [\"akia\"]\n"
	all := []string{"a.ini@c1", "b.ini@c1", "c.ini@c2"}
	for _, tt := range []struct {
		name, allow string
		want        []string
	}{
		{"none", "", all},
		{"AND commit and secret regex", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ncommits = [%q]\nregexes = ['%s']\n", c1, reviewKey1),
			[]string{"b.ini@c1", "c.ini@c2"}},
		{"AND other commit and secret regex", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ncommits = [%q]\nregexes = ['%s']\n", c2, reviewKey1),
			[]string{"a.ini@c1", "b.ini@c1"}},
		{"AND commit and path", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ncommits = [%q]\npaths = ['^a\\.ini$']\n", c1),
			[]string{"b.ini@c1", "c.ini@c2"}},
		{"AND commit and path of another commit", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ncommits = [%q]\npaths = ['^c\\.ini$']\n", c1),
			all},
		{"AND commit and line regex", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ncommits = [%q]\nregexTarget = \"line\"\nregexes = ['^aws_access_key_id']\n", c1),
			[]string{"c.ini@c2"}},
		{"AND commit and stopword", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ncommits = [%q]\nstopwords = ['%s']\n", c2, strings.ToLower(reviewKey1[10:])),
			[]string{"a.ini@c1", "b.ini@c1"}},
		{"AND commits only", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ncommits = [%q]\n", c1),
			[]string{"c.ini@c2"}},
		{"AND commit, regex not matching", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ncommits = [%q]\nregexes = ['nomatch']\n", c1),
			all},
		{"AND for another rule", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ntargetRules = [\"other\"]\ncommits = [%q]\nregexes = ['%s']\n", c1, reviewKey1),
			all},
		{"AND for this rule", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ntargetRules = [\"aws\"]\ncommits = [%q]\nregexes = ['%s']\n", c1, reviewKey1),
			[]string{"b.ini@c1", "c.ini@c2"}},
		{"rule AND allowlist", fmt.Sprintf("  [[rules.allowlists]]\n  condition = \"AND\"\n  commits = [%q]\n  regexes = ['%s']\n", c1, reviewKey1),
			[]string{"b.ini@c1", "c.ini@c2"}},
		{"OR commit or secret regex", fmt.Sprintf("[[allowlists]]\ncommits = [%q]\nregexes = ['%s']\n", c2, reviewKey2),
			[]string{"a.ini@c1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustScannerWith(t, rule+tt.allow)
			fs, err := s.ScanGit(context.Background(), repo, GitOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Path+"@"+name[f.Commit])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
			// Outside history there is no commit: an AND allowlist with
			// commits never matches there.
			if strings.Contains(tt.allow, "AND") {
				fs, err := s.ScanDir(context.Background(), repo, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(fs) != 3 {
					t.Errorf("got %v from the work tree; want all 3 findings", fs)
				}
			}
		})
	}
}
