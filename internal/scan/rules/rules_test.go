package rules_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/scan/rules"
)

// The test decodes the files into its own structs, strictly, so that it
// checks the files without the engine and a typo in a key name fails.
type allowlist struct {
	Description string   `toml:"description"`
	Condition   string   `toml:"condition"`
	RegexTarget string   `toml:"regexTarget"`
	Regexes     []string `toml:"regexes"`
	Stopwords   []string `toml:"stopwords"`
	Paths       []string `toml:"paths"`
}

type rule struct {
	ID          string      `toml:"id"`
	Description string      `toml:"description"`
	Regex       string      `toml:"regex"`
	SecretGroup int         `toml:"secretGroup"`
	Entropy     float64     `toml:"entropy"`
	Keywords    []string    `toml:"keywords"`
	Path        string      `toml:"path"`
	Tags        []string    `toml:"tags"`
	Checksum    string      `toml:"checksum"`
	TPs         []string    `toml:"tps"`
	FPs         []string    `toml:"fps"`
	Allowlists  []allowlist `toml:"allowlists"`
	// AssignAfterKeyword is the engine's prefilter; this reference
	// matcher runs the regex on every keyword line regardless.
	AssignAfterKeyword bool `toml:"assignAfterKeyword"`
	// Detector rules run the engine's assignment grammar, not a regex:
	// their samples are checked through the engine (scan.TestDetectorSamples).
	Detector string `toml:"detector"`
	// Validate "jwt": the secret must decode as a JWT (jwtValid, this
	// test's own reading of scan.DecodeJWT's contract).
	Validate string `toml:"validate"`

	file     string
	re       *regexp.Regexp
	pathRe   *regexp.Regexp
	allow    []compiledAllowlist
	multline bool
}

type compiledAllowlist struct {
	condition string
	target    string
	regexes   []*regexp.Regexp
	stopwords []string
	paths     []*regexp.Regexp
}

type ruleFile struct {
	Rules []rule `toml:"rules"`
}

var kebab = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// mustLoad parses and compiles every embedded rule file, failing on any
// undecoded key, bad regex or bad allowlist.
func mustLoad(tb testing.TB) []*rule {
	tb.Helper()
	names, err := fs.Glob(rules.FS, "*.toml")
	if err != nil {
		tb.Fatal(err)
	}
	if len(names) == 0 {
		tb.Fatal("got no embedded *.toml files; want the built-in rule set")
	}
	var out []*rule
	for _, name := range names {
		data, err := fs.ReadFile(rules.FS, name)
		if err != nil {
			tb.Fatal(err)
		}
		var rf ruleFile
		md, err := toml.Decode(string(data), &rf)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			tb.Fatalf("%s: got undecoded keys %v; want none", name, und)
		}
		if len(rf.Rules) == 0 {
			tb.Fatalf("%s: got no rules; want at least one", name)
		}
		for i := range rf.Rules {
			r := &rf.Rules[i]
			r.file = name
			if r.re, err = regexp.Compile(r.Regex); err != nil {
				tb.Fatalf("%s: rule %s: regex does not compile: %v", name, r.ID, err)
			}
			if r.Path != "" {
				if r.pathRe, err = regexp.Compile(r.Path); err != nil {
					tb.Fatalf("%s: rule %s: path does not compile: %v", name, r.ID, err)
				}
			}
			// The engine widens the window for the same signs.
			r.multline = strings.Contains(r.Regex, `\n`) || strings.Contains(r.Regex, "(?s") || strings.Contains(r.Regex, "-----")
			for _, a := range r.Allowlists {
				ca := compiledAllowlist{condition: strings.ToUpper(a.Condition), target: a.RegexTarget}
				for _, s := range a.Regexes {
					re, err := regexp.Compile(s)
					if err != nil {
						tb.Fatalf("%s: rule %s: allowlist regex %q does not compile: %v", name, r.ID, s, err)
					}
					ca.regexes = append(ca.regexes, re)
				}
				for _, s := range a.Paths {
					re, err := regexp.Compile(s)
					if err != nil {
						tb.Fatalf("%s: rule %s: allowlist path %q does not compile: %v", name, r.ID, s, err)
					}
					ca.paths = append(ca.paths, re)
				}
				for _, s := range a.Stopwords {
					ca.stopwords = append(ca.stopwords, strings.ToLower(s))
				}
				r.allow = append(r.allow, ca)
			}
			out = append(out, r)
		}
	}
	return out
}

func TestRuleSetShape(t *testing.T) {
	rs := mustLoad(t)
	if got, want := len(rs), 150; got < want {
		t.Errorf("got %d rules; want at least %d", got, want)
	}
	seen := map[string]string{}
	for _, r := range rs {
		if !kebab.MatchString(r.ID) {
			t.Errorf("%s: rule id %q is not kebab-case", r.file, r.ID)
		}
		if prev, ok := seen[r.ID]; ok {
			t.Errorf("%s: rule id %q also in %s; want unique ids", r.file, r.ID, prev)
		}
		seen[r.ID] = r.file
		if r.Description == "" {
			t.Errorf("rule %s: got no description", r.ID)
		}
		if r.SecretGroup < 0 || r.SecretGroup > r.re.NumSubexp() {
			t.Errorf("rule %s: got secretGroup %d; want 0..%d", r.ID, r.SecretGroup, r.re.NumSubexp())
		}
		if len(r.Keywords) == 0 {
			t.Errorf("rule %s: got no keywords; want at least one (the engine only runs regexes near keywords)", r.ID)
		}
		for _, k := range r.Keywords {
			if k == "" || k != strings.ToLower(k) || strings.TrimSpace(k) != k {
				t.Errorf("rule %s: got keyword %q; want a non-empty lower-case literal", r.ID, k)
			}
		}
		switch r.Checksum {
		case "", "tokenward", "github", "npm":
		default:
			t.Errorf("rule %s: got checksum %q; want tokenward, github or npm", r.ID, r.Checksum)
		}
		if r.Entropy < 0 || r.Entropy > 8 {
			t.Errorf("rule %s: got entropy %g; want 0..8", r.ID, r.Entropy)
		}
		if len(r.TPs) == 0 || len(r.FPs) == 0 {
			t.Errorf("rule %s: got %d tps and %d fps; want at least one of each", r.ID, len(r.TPs), len(r.FPs))
		}
		for _, a := range r.Allowlists {
			switch a.RegexTarget {
			case "", "secret", "match", "line":
			default:
				t.Errorf("rule %s: got regexTarget %q; want secret, match or line", r.ID, a.RegexTarget)
			}
			switch strings.ToUpper(a.Condition) {
			case "", "OR", "AND":
			default:
				t.Errorf("rule %s: got condition %q; want OR or AND", r.ID, a.Condition)
			}
		}
	}
}

// finding is what the tests' reference matcher reports.
type finding struct {
	rule   string
	secret string
	offset int // of the secret in the scanned text
}

// findings runs one rule over text the way the engine judges a match:
// secret group, checksum, entropy, then allowlists. path may be "".
func (r *rule) findings(path, text string) []finding {
	if r.Detector != "" {
		return nil // the engine's assignment grammar, not a regex
	}
	if r.pathRe != nil && !r.pathRe.MatchString(path) {
		return nil
	}
	var out []finding
	for _, loc := range r.re.FindAllStringSubmatchIndex(text, -1) {
		ss, se := loc[0], loc[1]
		if g := r.SecretGroup; g > 0 {
			ss, se = loc[2*g], loc[2*g+1]
		} else {
			for g := 1; 2*g+1 < len(loc); g++ {
				if loc[2*g] >= 0 && loc[2*g+1] > loc[2*g] {
					ss, se = loc[2*g], loc[2*g+1]
					break
				}
			}
		}
		if ss < 0 || se <= ss {
			continue
		}
		secret := text[ss:se]
		if r.Checksum != "" && !checksumValid(r.Checksum, secret) {
			continue
		}
		if r.Validate == "jwt" && !jwtValid(secret) {
			continue
		}
		if r.Entropy > 0 && entropy(secret) < r.Entropy {
			continue
		}
		ls := strings.LastIndexByte(text[:loc[0]], '\n') + 1
		le := len(text)
		if i := strings.IndexByte(text[loc[1]:], '\n'); i >= 0 {
			le = loc[1] + i
		}
		if r.allowed(path, secret, text[loc[0]:loc[1]], text[ls:le]) {
			continue
		}
		out = append(out, finding{rule: r.ID, secret: secret, offset: ss})
	}
	return out
}

func (r *rule) allowed(path, secret, match, line string) bool {
	for _, a := range r.allow {
		target := secret
		switch a.target {
		case "match":
			target = match
		case "line":
			target = line
		}
		var checks []bool
		if len(a.regexes) > 0 {
			hit := false
			for _, re := range a.regexes {
				hit = hit || re.MatchString(target)
			}
			checks = append(checks, hit)
		}
		if len(a.stopwords) > 0 {
			hit := false
			lower := strings.ToLower(secret)
			for _, w := range a.stopwords {
				hit = hit || strings.Contains(lower, w)
			}
			checks = append(checks, hit)
		}
		if len(a.paths) > 0 {
			hit := false
			for _, re := range a.paths {
				hit = hit || re.MatchString(path)
			}
			checks = append(checks, hit)
		}
		all, any := len(checks) > 0, false
		for _, c := range checks {
			all = all && c
			any = any || c
		}
		if (a.condition == "AND" && all) || (a.condition != "AND" && any) {
			return true
		}
	}
	return false
}

func hasKeyword(r *rule, text string) bool {
	lower := strings.ToLower(text)
	for _, k := range r.Keywords {
		if strings.Contains(lower, k) {
			return true
		}
	}
	return false
}

func TestRuleSamples(t *testing.T) {
	for _, r := range mustLoad(t) {
		t.Run(r.ID, func(t *testing.T) {
			if r.Detector != "" {
				t.Skip("a detector rule: its samples run through the engine (scan.TestDetectorSamples)")
			}
			for i, tp := range r.TPs {
				if !hasKeyword(r, tp) {
					t.Errorf("tp %d: got no keyword of %q in it; want one (the engine would never look)", i, r.Keywords)
				}
				if got := r.findings("", tp); len(got) == 0 {
					t.Errorf("tp %d: got no finding; want one in %q", i, tp)
				}
			}
			for i, fp := range r.FPs {
				if got := r.findings("", fp); len(got) > 0 {
					t.Errorf("fp %d: got a finding of %q; want none in %q", i, got[0].secret, fp)
				}
			}
		})
	}
}

// The checksummed rules are the ones reported as confirmed: their tps must
// carry valid checksums and their fps must include a checksum failure that
// the regex alone would accept.
func TestChecksumRulesRejectBadChecksums(t *testing.T) {
	n := 0
	for _, r := range mustLoad(t) {
		if r.Checksum == "" {
			continue
		}
		n++
		rejected := false
		for _, fp := range r.FPs {
			if r.re.MatchString(fp) && len(r.findings("", fp)) == 0 {
				rejected = true
			}
		}
		if !rejected {
			t.Errorf("rule %s: got no fp that matches the regex but fails the checksum; want one", r.ID)
		}
	}
	if n < 9 {
		t.Errorf("got %d checksummed rules; want at least 9 (5 GitHub, npm, 3 tokenward)", n)
	}
}

func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62CRC is the 6-character base62 CRC32 (IEEE) that GitHub, npm and
// tokenward append to their tokens.
func base62CRC(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out)
}

func allBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}

// checksumValid is the test's own checker: GitHub and npm checksum the 30
// random characters after the 4-character prefix; tokenward checksums the
// prefix and the 43 random characters.
func checksumValid(kind, s string) bool {
	switch kind {
	case "github", "npm":
		if len(s) != 40 || !allBase62(s[4:]) {
			return false
		}
		if kind == "npm" && s[:4] != "npm_" {
			return false
		}
		if kind == "github" && !strings.Contains("ghp_ gho_ ghu_ ghs_ ghr_", s[:4]) {
			return false
		}
		return base62CRC(s[4:34]) == s[34:]
	case "tokenward":
		if len(s) != tokenward.TokenLen || !allBase62(s[4:]) {
			return false
		}
		return base62CRC(s[:47]) == s[47:]
	}
	return false
}

func TestChecksumChecker(t *testing.T) {
	gh := "ghp_" + "Abc123Def456Ghi789Jkl012Mno345"
	gh += base62CRC(gh[4:])
	admin, err := tokenward.NewTokenSecret(tokenward.TokenAdmin)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)-1] == 'A' {
			b[len(b)-1] = 'B'
		} else {
			b[len(b)-1] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		kind, s string
		want    bool
	}{
		{"github", gh, true},
		{"github", flip(gh), false},
		{"github", "gh_x" + gh[4:], false},
		{"github", gh[:39], false},
		{"npm", "npm_" + gh[4:], true},
		{"npm", gh, false},
		{"tokenward", admin, true},
		{"tokenward", flip(admin), false},
		{"tokenward", admin[:52], false},
		{"unknown", gh, false},
	}
	for _, tt := range tests {
		if got := checksumValid(tt.kind, tt.s); got != tt.want {
			t.Errorf("checksumValid(%s, %.8s…) = %v; want %v", tt.kind, tt.s, got, tt.want)
		}
		if tt.kind == "tokenward" {
			if got := tokenward.TokenChecksumValid(tt.s); got != tt.want {
				t.Errorf("tokenward.TokenChecksumValid(%.8s…) = %v; want %v (the test's checker disagrees with the domain's)", tt.s, got, tt.want)
			}
		}
	}
}

// corpusDir is the labelled corpus, relative to this package.
const corpusDir = "../../../testdata/scan/corpus"

type label struct {
	path string
	line int
	rule string
}

func readLabels(tb testing.TB) []label {
	tb.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "labels.tsv"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []label
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		parts := strings.Split(text, "\t")
		if len(parts) != 3 {
			tb.Fatalf("labels.tsv:%d: got %d fields; want path<TAB>line<TAB>rule-id", n, len(parts))
		}
		line, err := strconv.Atoi(parts[1])
		if err != nil || line < 1 {
			tb.Fatalf("labels.tsv:%d: got line %q; want a positive number", n, parts[1])
		}
		out = append(out, label{parts[0], line, parts[2]})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// referenceScan runs every rule over every corpus file: line by line for
// single-line rules (as the engine's windows do), over the whole file for
// multi-line ones. It has none of the engine's heuristics, so the corpus
// must be precise on the rules alone.
func referenceScan(tb testing.TB, rs []*rule) map[string][]finding {
	tb.Helper()
	out := map[string][]finding{}
	err := filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(corpusDir, p)
		rel = filepath.ToSlash(rel)
		if rel == "labels.tsv" || rel == "negatives.tsv" || rel == "README.md" || strings.HasPrefix(rel, "rules/") {
			// rules/ is generated from the rules' own samples, and its
			// placeholder negatives need the engine's heuristics: the
			// engine's TestCorpusEval scores it.
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(data)
		for _, r := range rs {
			if !hasKeyword(r, text) {
				continue
			}
			if r.multline {
				out[rel] = append(out[rel], r.findings(rel, text)...)
				continue
			}
			off := 0
			for _, line := range strings.SplitAfter(text, "\n") {
				if hasKeyword(r, line) {
					for _, f := range r.findings(rel, strings.TrimSuffix(line, "\n")) {
						f.offset += off
						out[rel] = append(out[rel], f)
					}
				}
				off += len(line)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func lineOf(text []byte, off int) int { return bytes.Count(text[:off], []byte("\n")) + 1 }

// TestCorpusAgainstRules checks the corpus and the rules against each other:
// every label is found by its rule on its line (recall), and every finding
// is on a labelled line (precision). Labels under encoded/ need the engine's
// base64/hex/percent decoding and those under wild/ and holdout/ its assignment grammar,
// so only precision is checked there. The engine's own precision/recall test
// runs the full scanner over the same corpus.
func TestCorpusAgainstRules(t *testing.T) {
	rs := mustLoad(t)
	labels := readLabels(t)
	if got, want := len(labels), 150; got < want {
		t.Errorf("got %d labels; want at least %d", got, want)
	}
	ruleIDs := map[string]bool{}
	for _, r := range rs {
		ruleIDs[r.ID] = true
	}
	type key struct {
		path string
		line int
	}
	labelled := map[key][]string{}
	for _, l := range labels {
		if strings.HasPrefix(l.path, "rules/") {
			continue // see referenceScan
		}
		if l.rule != "*" && !ruleIDs[l.rule] {
			t.Errorf("label %s:%d: got unknown rule %q", l.path, l.line, l.rule)
		}
		labelled[key{l.path, l.line}] = append(labelled[key{l.path, l.line}], l.rule)
	}
	found := map[key]map[string]bool{}
	var fps []string
	total := 0
	for path, pathFindings := range referenceScan(t, rs) {
		data, err := os.ReadFile(filepath.Join(corpusDir, path))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range pathFindings {
			k := key{path, lineOf(data, f.offset)}
			if found[k] == nil {
				found[k] = map[string]bool{}
			}
			if !found[k][f.rule] {
				total++
			}
			found[k][f.rule] = true
			if _, ok := labelled[k]; !ok {
				fps = append(fps, fmt.Sprintf("%s:%d: %s (%.4s…)", k.path, k.line, f.rule, f.secret))
			}
		}
	}
	missed, checked := 0, 0
	for _, l := range labels {
		if strings.HasPrefix(l.path, "rules/") {
			continue // see referenceScan
		}
		if strings.HasPrefix(l.path, "encoded/") || strings.HasPrefix(l.path, "wild/") || strings.HasPrefix(l.path, "holdout/") {
			continue // only the engine (decoder, assignment grammar) can see these
		}
		checked++
		k := key{l.path, l.line}
		if l.rule == "*" && len(found[k]) > 0 || found[k][l.rule] {
			continue
		}
		missed++
		t.Errorf("label %s:%d %s: got no finding by that rule; found %v", l.path, l.line, l.rule, found[k])
	}
	sort.Strings(fps)
	for _, fp := range fps {
		t.Errorf("unlabelled finding %s", fp)
	}
	recall := float64(checked-missed) / float64(checked)
	precision := 1.0
	if total > 0 {
		precision = float64(total-len(fps)) / float64(total)
	}
	t.Logf("corpus: %d labels, %d findings, recall %.3f, precision %.3f", len(labels), total, recall, precision)
}

// jwtValid: three dot-separated base64url parts, the last not empty; a
// JSON header whose alg is a string other than none; a JSON object payload
// that is neither the jwt.io sample (sub 1234567890) nor holds a string
// claim with a placeholder word.
func jwtValid(tok string) bool {
	p := strings.Split(tok, ".")
	if len(p) != 3 || p[2] == "" {
		return false
	}
	var h, c map[string]any
	hb, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(p[0], "="))
	cb, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(p[1], "="))
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		return false
	}
	if alg, _ := h["alg"].(string); alg == "" || strings.EqualFold(alg, "none") {
		return false
	}
	for k, v := range c {
		s, _ := v.(string)
		l := strings.ToLower(s)
		if k == "sub" && s == "1234567890" || l == "john doe" || l == "jane doe" {
			return false
		}
		for _, w := range []string{"example", "placeholder", "changeme", "change_me", "your_", "your-", "dummy", "redacted", "${", "{{", "xxxx", "foobar"} {
			if strings.Contains(l, w) {
				return false
			}
		}
	}
	return true
}

// FuzzRules runs every rule over arbitrary input: no panic, and every
// reported secret lies inside the input.
func FuzzRules(f *testing.F) {
	rs := mustLoad(f)
	for _, r := range rs[:20] {
		f.Add(r.TPs[0])
	}
	f.Add("password = \"\"\n-----BEGIN RSA PRIVATE KEY-----\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range rs {
			if !hasKeyword(r, s) {
				continue
			}
			for _, fd := range r.findings("", s) {
				if fd.offset < 0 || fd.offset+len(fd.secret) > len(s) || s[fd.offset:fd.offset+len(fd.secret)] != fd.secret {
					t.Fatalf("rule %s: got a secret outside the input", r.ID)
				}
			}
		}
	})
}

// BenchmarkRulesOnCorpusLines runs every rule the way the engine does:
// only on lines that contain one of its keywords. The corpus is dense with
// keywords, so this is a worst case for the regex share of a scan.
func BenchmarkRulesOnCorpusLines(b *testing.B) {
	rs := mustLoad(b)
	var lines []string
	size := 0
	err := filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		size += len(data)
		lines = append(lines, strings.Split(string(data), "\n")...)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	// The engine finds keywords with one Aho-Corasick pass; here the
	// (line, rule) pairs are precomputed so only regex time is measured.
	type job struct {
		r    *rule
		line string
	}
	var jobs []job
	for _, line := range lines {
		for _, r := range rs {
			if hasKeyword(r, line) {
				jobs = append(jobs, job{r, line})
			}
		}
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		for _, j := range jobs {
			j.r.re.FindAllStringSubmatchIndex(j.line, -1)
		}
	}
}

// maxProgram bounds a rule's compiled regex. Go's regexp runs programs of at
// most 500 instructions with its backtracker on inputs up to 256 Kibit/len
// bytes, and falls back to a much slower NFA otherwise; staying at 300 keeps
// line windows of ~870 bytes on the fast path. Wide counted repetitions
// ({0,200}) are what blow the size up: write * or {n,} instead.
const maxProgram = 300

func TestRuleProgramsAreSmall(t *testing.T) {
	for _, r := range mustLoad(t) {
		re, err := syntax.Parse(r.Regex, syntax.Perl)
		if err != nil {
			t.Fatalf("rule %s: %v", r.ID, err)
		}
		prog, err := syntax.Compile(re.Simplify())
		if err != nil {
			t.Fatalf("rule %s: %v", r.ID, err)
		}
		if got := len(prog.Inst); got > maxProgram {
			t.Errorf("rule %s: got a regex program of %d instructions; want at most %d", r.ID, got, maxProgram)
		}
	}
}
