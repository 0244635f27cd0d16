package scan

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/scan/rules"
)

// TestCorpusPrecisionRecall scans the labelled corpus with the built-in
// rules. labels.tsv lists every true credential as path, line, rule id (or
// *); any other finding is a false positive.
func TestCorpusPrecisionRecall(t *testing.T) {
	root := filepath.Join("..", "..", "testdata", "scan", "corpus")
	lf, err := os.Open(filepath.Join(root, "labels.tsv"))
	if os.IsNotExist(err) {
		t.Skip("no corpus yet (testdata/scan/corpus/labels.tsv)")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	type label struct {
		path string
		line int
	}
	labels := map[label]string{}
	sc := bufio.NewScanner(lf)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("labels.tsv:%d: got %d fields; want path, line, rule-id", n, len(f))
		}
		ln, err := strconv.Atoi(f[1])
		if err != nil || ln < 1 {
			t.Fatalf("labels.tsv:%d: bad line number %q", n, f[1])
		}
		labels[label{f[0], ln}] = f[2]
	}
	cfg, err := LoadFS(rules.FS)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := s.ScanDir(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := map[label]bool{}
	var tp, fp int
	var fps []string
	for _, f := range fs {
		if f.Path == "labels.tsv" || f.Path == "README.md" {
			continue
		}
		k := label{f.Path, f.Line}
		want, ok := labels[k]
		if ok && (want == "*" || want == f.RuleID) {
			if !found[k] {
				tp++
			}
			found[k] = true
			continue
		}
		if ok && found[k] {
			continue // a second rule on a labelled line: not counted either way
		}
		fp++
		fps = append(fps, fmt.Sprintf("%s:%d %s", f.Path, f.Line, f.RuleID))
	}
	var missed []string
	for k, id := range labels {
		if !found[k] {
			missed = append(missed, fmt.Sprintf("%s:%d %s", k.path, k.line, id))
		}
	}
	sort.Strings(missed)
	recall := float64(tp) / float64(len(labels))
	precision := 1.0
	if tp+fp > 0 {
		precision = float64(tp) / float64(tp+fp)
	}
	t.Logf("corpus: %d labelled, %d true positives, %d false positives, %d missed", len(labels), tp, fp, len(missed))
	t.Logf("precision %.1f%%, recall %.1f%%", 100*precision, 100*recall)
	for _, m := range missed {
		t.Logf("missed: %s", m)
	}
	for _, f := range fps {
		t.Logf("false positive: %s", f)
	}
	if recall < 0.95 {
		t.Errorf("got recall %.1f%%; want at least 95%%", 100*recall)
	}
	if precision < 0.90 {
		t.Errorf("got precision %.1f%%; want at least 90%%", 100*precision)
	}
}
