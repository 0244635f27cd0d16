package manifest

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// yamlBlocks returns the ```yaml blocks of a markdown file.
func yamlBlocks(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		out = append(out, m[1])
	}
	return out
}

// The manifests the docs show must parse: a copied example that fails
// would be the first thing a reader meets.
func TestDocsManifestsParse(t *testing.T) {
	n := 0
	for _, path := range []string{"../../docs/manifest.md", "../../docs/ci.md"} {
		for i, b := range yamlBlocks(t, path) {
			if !strings.HasPrefix(b, "project:") {
				continue // a workflow, not a manifest
			}
			n++
			if _, err := Parse(fmt.Sprintf("%s block %d", path, i), []byte(b)); err != nil {
				t.Errorf("%v", err)
			}
		}
	}
	if n < 2 {
		t.Errorf("got %d manifests in the docs; want at least 2", n)
	}
}

// docs/manifest.md's tables are the documented contract of check: every
// class with its severity, and every exit code.
func TestDocsCheckContract(t *testing.T) {
	data, err := os.ReadFile("../../docs/manifest.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for class, sev := range severities {
		label := string(sev)
		if class == ClassUnknownEnv {
			label = "usage error"
		}
		if row := fmt.Sprintf("| `%s` | %s |", class, label); !strings.Contains(doc, row) {
			t.Errorf("docs/manifest.md: no row %q", row)
		}
	}
	for _, code := range []int{ExitOK, ExitErrors, ExitUsage, ExitWarnings} {
		if row := fmt.Sprintf("| %d |", code); !strings.Contains(doc, row) {
			t.Errorf("docs/manifest.md: no exit code row %q", row)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/tokenward.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("tokenward.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck checks 200 secrets in 5 environments.
func BenchmarkCheck(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("project: big\nenvironments: [e1, e2, e3, e4, e5]\nsecrets:\n")
	for i := range 200 {
		fmt.Fprintf(&sb, "  S%d: {owner: team, rotate: 30d}\n", i)
	}
	m, err := Parse("big.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	facts := Facts{TokenGrants: m.ImpliedGrants("")}
	for b.Loop() {
		Check(m, "", facts, checkNow)
	}
}
