package scan

import (
	"bufio"
	"bytes"
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

// corpusRoot is the labelled corpus; README.md there documents the labels.
var corpusRoot = filepath.Join("..", "..", "testdata", "scan", "corpus")

// corpusGolden holds the evaluation table TestCorpusEval compares against;
// evalDoc is the same table as a documentation page.
var (
	corpusGolden = filepath.Join("..", "..", "testdata", "scan", "eval.golden")
	evalDoc      = filepath.Join("..", "..", "docs", "scan-eval.md")
)

const evalDocHead = `# Leak-scan corpus evaluation, per rule

The table ` + "`make scan-eval`" + ` checks (testdata/scan/eval.golden), written here by
` + "`make scan-eval UPDATE=1`" + `. See [scanning.md](scanning.md#corpus-evaluation) for the
corpus and the scoring. ` + "`*`" + ` are positives any rule may find (wild/, holdout/);
` + "`dir:`" + ` rows are the top-level corpus directories. Precision counts a rule's findings
on labelled lines; "flagged" counts hard negatives (labelled for that rule) that any rule
reported.

| rule | positives | recalled | recall | findings | unlabelled | precision | negatives | flagged |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
`

// markdown renders the golden table as the documentation page.
// evalDocMarker starts the hand-written part of docs/scan-eval.md (the
// comparison with gitleaks): -update keeps it, the check ignores it.
const evalDocMarker = "\n<!-- hand-written below this line: make scan-eval UPDATE=1 keeps it -->\n"

// splitEvalDoc splits the document into the generated table and the
// hand-written tail (which starts with the marker, or is "").
func splitEvalDoc(doc string) (table, tail string) {
	if i := strings.Index(doc, evalDocMarker); i >= 0 {
		return doc[:i], doc[i:]
	}
	return doc, ""
}

func first(a, _ string) string { return a }

func markdown(table string) string {
	var b strings.Builder
	b.WriteString(evalDocHead)
	for _, line := range strings.Split(table, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if f[0] == "TOTAL" {
			f[0] = "**TOTAL**"
		}
		b.WriteString("| " + strings.Join(f, " | ") + " |\n")
	}
	return b.String()
}

// Floors the whole corpus must stay above, whatever the golden says.
const (
	minCorpusRecall    = 0.5
	minCorpusPrecision = 0.9
)

type corpusLine struct {
	path string
	line int
}

// readCorpusLabels reads a labels file: path, line, rule id (or *) per line,
// tab-separated; # lines are comments.
func readCorpusLabels(tb testing.TB, name string) map[corpusLine]string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(corpusRoot, name))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[corpusLine]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			tb.Fatalf("%s:%d: got %d fields; want path, line, rule-id", name, n, len(f))
		}
		ln, err := strconv.Atoi(f[1])
		if err != nil || ln < 1 {
			tb.Fatalf("%s:%d: bad line number %q", name, n, f[1])
		}
		k := corpusLine{f[0], ln}
		if _, dup := out[k]; dup {
			tb.Fatalf("%s:%d: %s:%d is labelled twice", name, n, f[0], ln)
		}
		out[k] = f[2]
	}
	return out
}

// ruleScore is one row of the evaluation table.
type ruleScore struct {
	labels, recalled   int // positives labelled with the rule, and found by it
	negatives, tempted int // negatives labelled with the rule, and flagged by any rule
	findings, fps      int // the rule's findings, and those on unlabelled lines
}

// corpusEval scans the corpus with the built-in rules and scores it: a
// positive is recalled when a finding of its rule (any rule for *) is on
// its line; a finding on a line without a positive label is a false
// positive.
type corpusEval struct {
	pos, neg         map[corpusLine]string
	rows             map[string]*ruleScore
	dirs             map[string]*ruleScore // by top-level corpus directory
	total            ruleScore
	missed, unlabled []string
}

func evaluateCorpus(tb testing.TB) *corpusEval {
	tb.Helper()
	ev := &corpusEval{
		pos:  readCorpusLabels(tb, "labels.tsv"),
		neg:  readCorpusLabels(tb, "negatives.tsv"),
		rows: map[string]*ruleScore{},
		dirs: map[string]*ruleScore{},
	}
	cfg, err := LoadFS(rules.FS)
	if dir := os.Getenv("SCAN_EVAL_RULES"); dir != "" {
		cfg, err = LoadFS(os.DirFS(dir)) // another rule set, to compare
	}
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(cfg, Options{Workers: 2})
	if err != nil {
		tb.Fatal(err)
	}
	fs, err := s.ScanDir(context.Background(), corpusRoot, nil)
	if err != nil {
		tb.Fatal(err)
	}
	row := func(id string) *ruleScore {
		if ev.rows[id] == nil {
			ev.rows[id] = &ruleScore{}
		}
		return ev.rows[id]
	}
	dir := func(p string) *ruleScore {
		d := "dir:" + p[:strings.IndexByte(p+"/", '/')]
		if ev.dirs[d] == nil {
			ev.dirs[d] = &ruleScore{}
		}
		return ev.dirs[d]
	}
	for k, id := range ev.neg {
		if _, ok := ev.pos[k]; ok {
			tb.Fatalf("%s:%d is labelled both positive and negative", k.path, k.line)
		}
		row(id).negatives++
		dir(k.path).negatives++
		ev.total.negatives++
	}
	found := map[corpusLine]map[string]bool{}
	for _, f := range fs {
		if f.Path == "labels.tsv" || f.Path == "negatives.tsv" || f.Path == "README.md" {
			continue
		}
		k := corpusLine{f.Path, f.Line}
		if found[k] == nil {
			found[k] = map[string]bool{}
		}
		if found[k][f.RuleID] {
			continue // the same rule twice on a line counts once
		}
		found[k][f.RuleID] = true
		r := row(f.RuleID)
		r.findings++
		dir(f.Path).findings++
		ev.total.findings++
		if _, ok := ev.pos[k]; !ok {
			r.fps++
			dir(f.Path).fps++
			ev.total.fps++
			ev.unlabled = append(ev.unlabled, fmt.Sprintf("%s:%d %s", f.Path, f.Line, f.RuleID))
		}
	}
	tempted := map[corpusLine]bool{}
	for k, id := range ev.neg {
		if len(found[k]) > 0 && !tempted[k] {
			tempted[k] = true
			row(id).tempted++
			dir(k.path).tempted++
			ev.total.tempted++
		}
	}
	for k, id := range ev.pos {
		r := row(id)
		r.labels++
		dir(k.path).labels++
		ev.total.labels++
		if id == "*" && len(found[k]) > 0 || found[k][id] {
			r.recalled++
			dir(k.path).recalled++
			ev.total.recalled++
			continue
		}
		ev.missed = append(ev.missed, fmt.Sprintf("%s:%d %s", k.path, k.line, id))
	}
	sort.Strings(ev.missed)
	sort.Strings(ev.unlabled)
	return ev
}

func ratio(a, b int) string {
	if b == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(a)/float64(b), 'f', 3, 64)
}

// table renders the evaluation as the golden file holds it: one row per
// rule with labels or findings, then the total; * is "any rule".
func (ev *corpusEval) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# tokenward scan corpus evaluation (make scan-eval; -update rewrites this file)\n")
	fmt.Fprintf(&b, "# rule\tpositives\trecalled\trecall\tfindings\tunlabelled\tprecision\tnegatives\tnegatives-flagged\n")
	ids := make([]string, 0, len(ev.rows))
	for id := range ev.rows {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	line := func(id string, r *ruleScore) {
		fmt.Fprintf(&b, "%s\t%d\t%d\t%s\t%d\t%d\t%s\t%d\t%d\n", id, r.labels, r.recalled, ratio(r.recalled, r.labels),
			r.findings, r.fps, ratio(r.findings-r.fps, r.findings), r.negatives, r.tempted)
	}
	for _, id := range ids {
		line(id, ev.rows[id])
	}
	line("TOTAL", &ev.total)
	fmt.Fprintf(&b, "# by top-level directory (holdout/ was written after the rules were tuned and is not tuned against)\n")
	ids = ids[:0]
	for id := range ev.dirs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		line(id, ev.dirs[id])
	}
	return b.String()
}

// TestCorpusEval scores the built-in rules on the labelled corpus and
// compares the per-rule table with testdata/scan/eval.golden: a rule
// change shows in the diff what it gained and what it broke. A rule's
// recall may not fall below its golden value, nor overall recall and
// precision below the floors.
func TestCorpusEval(t *testing.T) {
	ev := evaluateCorpus(t)
	got := ev.table()
	recall := float64(ev.total.recalled) / float64(ev.total.labels)
	precision := float64(ev.total.findings-ev.total.fps) / float64(max(1, ev.total.findings))
	t.Logf("corpus: %d positives, %d recalled (%.3f), %d findings, %d unlabelled (precision %.3f), %d negatives, %d flagged",
		ev.total.labels, ev.total.recalled, recall, ev.total.findings, ev.total.fps, precision, ev.total.negatives, ev.total.tempted)
	if testing.Verbose() {
		t.Logf("evaluation:\n%s", got)
		for _, m := range ev.missed {
			t.Logf("missed: %s", m)
		}
		for _, u := range ev.unlabled {
			t.Logf("unlabelled finding: %s", u)
		}
	}
	if os.Getenv("SCAN_EVAL_RULES") != "" {
		t.Logf("evaluation of $SCAN_EVAL_RULES:\n%s", got)
		t.Skip("another rule set: not compared with the golden file")
	}
	if recall < minCorpusRecall {
		t.Errorf("got recall %.3f; want at least %.2f", recall, minCorpusRecall)
	}
	if precision < minCorpusPrecision {
		t.Errorf("got precision %.3f; want at least %.2f", precision, minCorpusPrecision)
	}
	if *update {
		if err := os.WriteFile(corpusGolden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		old, _ := os.ReadFile(evalDoc)
		_, tail := splitEvalDoc(string(old))
		if err := os.WriteFile(evalDoc, []byte(markdown(got)+tail), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc, err := os.ReadFile(evalDoc); err != nil || first(splitEvalDoc(string(doc))) != markdown(got) {
		t.Errorf("docs/scan-eval.md is not the current table (make scan-eval UPDATE=1 rewrites it): %v", err)
	}
	want, err := os.ReadFile(corpusGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	floors := parseEvalTable(string(want))
	for id, r := range ev.rows {
		// Compared as printed (3 decimals), as the golden file holds it.
		if fl, ok := floors[id]; ok && r.labels > 0 && parseRatio(ratio(r.recalled, r.labels)) < fl {
			t.Errorf("rule %s: got recall %s; want at least its golden %.3f", id, ratio(r.recalled, r.labels), fl)
		}
	}
	if got != string(want) {
		t.Errorf("evaluation differs from %s (run make scan-eval UPDATE=1 to accept):\n%s", corpusGolden, lineDiff(string(want), got))
	}
}

func parseRatio(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// parseEvalTable returns each rule's golden recall.
func parseEvalTable(s string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(f[3], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
