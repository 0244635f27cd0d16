package scan

import (
	"fmt"
	"slices"
	"testing"
)

// A generic finding is hidden behind a specific one of the same value only
// when the specific one is reported: in history a commit allowlist may drop
// the specific finding after the scan, and then nothing allowed the generic.
// The same holds for a detector finding hidden behind any other.
func TestScanGitShadowAfterCommitAllowlist(t *testing.T) {
	repo := t.TempDir()
	mustGitT(t, repo, "init", "-q", "-b", "main")
	c1 := mustCommit(t, repo, "one", "a.ini", "aws_access_key_id = "+reviewKey1+"\n")
	c2 := mustCommit(t, repo, "two", "b.ini", "aws_secret = "+reviewKey2+"\n")
	name := map[string]string{c1: "c1", c2: "c2"}

	const rules = "[[rules]]\nid = \"aws\"\nregex = 'AKIA[A-Z2-7]{16}'\nkeywords = [\"akia\"]\n%s" +
		"[[rules]]\nid = \"generic-key\"\nregex = '''(?:key_id|secret) = (\\w+)'''\nsecretGroup = 1\nkeywords = [\"key_id\", \"secret\"]\n"
	const detector = "[[rules]]\nid = \"assigned\"\ndetector = \"secret\"\nkeywords = [\"key_id\", \"secret\"]\n"
	for _, tt := range []struct {
		name, awsAllow, extra string
		want                  []string
	}{
		{"no allowlist", "", "", []string{"a.ini:aws@c1", "b.ini:aws@c2"}},
		{"specific rule allows its commit", fmt.Sprintf("[[rules.allowlists]]\ncommits = [%q]\n", c1), "",
			[]string{"a.ini:generic-key@c1", "b.ini:aws@c2"}},
		{"global OR list for the specific rule", "", fmt.Sprintf("[[allowlists]]\ntargetRules = [\"aws\"]\ncommits = [%q]\n", c2),
			[]string{"a.ini:aws@c1", "b.ini:generic-key@c2"}},
		{"global AND list for the specific rule", "", fmt.Sprintf("[[allowlists]]\ncondition = \"AND\"\ntargetRules = [\"aws\"]\ncommits = [%q]\nregexes = ['%s']\n", c1, reviewKey1),
			[]string{"a.ini:generic-key@c1", "b.ini:aws@c2"}},
		{"global list for both", "", fmt.Sprintf("[[allowlists]]\ncommits = [%q]\n", c1),
			[]string{"b.ini:aws@c2"}},
		{"global list for both, other commit", "", fmt.Sprintf("[[allowlists]]\ncommits = [%q]\n", "0000000000000000000000000000000000000001"),
			[]string{"a.ini:aws@c1", "b.ini:aws@c2"}},
		{"detector behind both", "", detector, []string{"a.ini:aws@c1", "b.ini:aws@c2"}},
		{"detector behind the generic", fmt.Sprintf("[[rules.allowlists]]\ncommits = [%q, %q]\n", c1, c2), detector,
			[]string{"a.ini:generic-key@c1", "b.ini:generic-key@c2"}},
		{"detector alone", fmt.Sprintf("[[rules.allowlists]]\ncommits = [%q, %q]\n", c1, c2),
			detector + fmt.Sprintf("[[allowlists]]\ntargetRules = [\"generic-key\"]\ncommits = [%q]\n", c2),
			[]string{"a.ini:generic-key@c1", "b.ini:assigned@c2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := mustScanGitWith(t, fmt.Sprintf(rules, tt.awsAllow)+tt.extra, repo)
			var got []string
			for _, f := range fs {
				got = append(got, f.Path+":"+f.RuleID+"@"+name[f.Commit])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}
