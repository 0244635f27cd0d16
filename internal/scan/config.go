// Package scan finds leaked credentials in files, git history, staged changes
// and streams: one Aho-Corasick keyword pass per buffer, then rule regexes only
// in bounded windows around keyword hits.
package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

// ValidateJWT is the one structural check a rule may name in `validate`.
const ValidateJWT = "jwt"

// Checksum names a rule may carry in its `checksum` field.
const (
	ChecksumTokenward = "tokenward"
	ChecksumGitHub    = "github"
	ChecksumNPM       = "npm"
)

// Allowlist regex targets.
const (
	TargetSecret = "secret"
	TargetMatch  = "match"
	TargetLine   = "line"
)

// Rule is one compiled detection rule.
type Rule struct {
	ID          string
	Description string
	Regex       *regexp.Regexp
	SecretGroup int
	Entropy     float64
	Keywords    []string // lower case
	Path        *regexp.Regexp
	Tags        []string
	Allowlists  []*Allowlist
	Checksum    string
	Validate    string // "" or ValidateJWT
	TPs         []string
	FPs         []string
	Source      string // file the rule came from

	// AssignAfterKeyword: a keyword hit opens a window only when an
	// assignment follows it (see fileRule); an exact prefilter for the
	// generic key = value rules, whose keywords are common words.
	AssignAfterKeyword bool

	// Detector names the built-in assignment grammar (DetectorPassword or
	// DetectorSecret) a rule runs at its keyword hits instead of a regex:
	// see assign.go.
	Detector string

	multiline bool // the regex may span lines: give it a wider window
	generic   bool // a keyword-context rule: placeholder/UUID/hash heuristics apply
}

// Allowlist suppresses findings. With Condition "OR" (the default) any one
// matching check suppresses; with "AND" every check that is set must match.
type Allowlist struct {
	Description string
	Regexes     []*regexp.Regexp
	RegexTarget string
	Paths       []*regexp.Regexp
	Stopwords   []string // lower case
	Commits     []string
	Condition   string
	TargetRules []string // global allowlists only: limit to these rule ids
}

// Config is a loaded rule set.
type Config struct {
	Rules      []*Rule
	Allowlists []*Allowlist
	// UseDefault is set when a file asked for the built-in rules with
	// [extend] useDefault = true; the caller merges them in.
	UseDefault    bool
	DisabledRules []string
}

// ConfigError is a rule-file problem; it names the file and, where there is
// one, the rule.
type ConfigError struct {
	File   string
	RuleID string
	Msg    string
}

func (e *ConfigError) Error() string {
	if e.RuleID != "" {
		return fmt.Sprintf("%s: rule %q: %s", e.File, e.RuleID, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

type fileAllowlist struct {
	Description string   `toml:"description"`
	Regexes     []string `toml:"regexes"`
	RegexTarget string   `toml:"regexTarget"`
	Paths       []string `toml:"paths"`
	Stopwords   []string `toml:"stopwords"`
	Commits     []string `toml:"commits"`
	Condition   string   `toml:"condition"`
	TargetRules []string `toml:"targetRules"`
}

type fileRule struct {
	ID          string          `toml:"id"`
	Description string          `toml:"description"`
	Regex       string          `toml:"regex"`
	SecretGroup int             `toml:"secretGroup"`
	Entropy     float64         `toml:"entropy"`
	Keywords    []string        `toml:"keywords"`
	Path        string          `toml:"path"`
	Tags        []string        `toml:"tags"`
	Allowlist   *fileAllowlist  `toml:"allowlist"` // gitleaks v8 before 8.21
	Allowlists  []fileAllowlist `toml:"allowlists"`
	Checksum    string          `toml:"checksum"`
	// Validate (tokenward only) names a structural check the secret must
	// pass: "jwt" decodes a JSON Web Token's header and payload (DecodeJWT).
	Validate string   `toml:"validate"`
	TPs      []string `toml:"tps"`
	FPs      []string `toml:"fps"`
	// AssignAfterKeyword (tokenward only) promises that every match ends a
	// keyword, then has [\w.-]*, an optional quote, at most 10 blanks and
	// an assignment (: = => := ?=): keyword hits not followed so are
	// skipped without running the regex.
	AssignAfterKeyword bool `toml:"assignAfterKeyword"`
	// Detector (tokenward only) runs the assignment grammar for names of
	// this meaning ("password" or "secret") instead of a regex.
	Detector string `toml:"detector"`
}

type fileConfig struct {
	Title      string `toml:"title"`
	MinVersion string `toml:"minVersion"`
	Extend     struct {
		UseDefault    bool     `toml:"useDefault"`
		Path          string   `toml:"path"`
		URL           string   `toml:"url"`
		DisabledRules []string `toml:"disabledRules"`
	} `toml:"extend"`
	Rules      []fileRule      `toml:"rules"`
	Allowlist  *fileAllowlist  `toml:"allowlist"`
	Allowlists []fileAllowlist `toml:"allowlists"`
}

// MaxRuleFileSize bounds a rule file.
const MaxRuleFileSize = 8 << 20

// ParseConfig parses one TOML rule file (tokenward or gitleaks format).
// name is used in errors only.
func ParseConfig(name string, data []byte) (*Config, error) {
	if len(data) > MaxRuleFileSize {
		return nil, &ConfigError{File: name, Msg: fmt.Sprintf("rule file is larger than %d bytes", MaxRuleFileSize)}
	}
	var fc fileConfig
	md, err := toml.Decode(string(data), &fc)
	if err != nil {
		return nil, &ConfigError{File: name, Msg: "invalid TOML: " + firstLine(err.Error())}
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, 0, len(und))
		for _, k := range und {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		msg := "unknown key " + strings.Join(keys, ", ")
		if strings.Contains(msg, ".required") {
			msg += " (gitleaks composite rules are not supported)"
		}
		return nil, &ConfigError{File: name, Msg: msg}
	}
	if fc.Extend.Path != "" || fc.Extend.URL != "" {
		return nil, &ConfigError{File: name, Msg: "[extend] path/url is not supported; pass each file with --config"}
	}
	cfg := &Config{UseDefault: fc.Extend.UseDefault, DisabledRules: fc.Extend.DisabledRules}
	seen := map[string]bool{}
	for i := range fc.Rules {
		fr := &fc.Rules[i]
		r, err := compileRule(name, fr)
		if err != nil {
			return nil, err
		}
		if seen[r.ID] {
			return nil, &ConfigError{File: name, RuleID: r.ID, Msg: "duplicate rule id"}
		}
		seen[r.ID] = true
		cfg.Rules = append(cfg.Rules, r)
	}
	var globals []fileAllowlist
	if fc.Allowlist != nil {
		globals = append(globals, *fc.Allowlist)
	}
	globals = append(globals, fc.Allowlists...)
	for i := range globals {
		al, err := compileAllowlist(&globals[i], true)
		if err != nil {
			return nil, &ConfigError{File: name, Msg: "global allowlist: " + err.Error()}
		}
		cfg.Allowlists = append(cfg.Allowlists, al)
	}
	return cfg, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ruleIDPattern is compiled on first use: its {0,127} makes it the costliest
// thing in the package's start-up, and most commands never load rules.
var ruleIDPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
})

func compileRule(file string, fr *fileRule) (*Rule, error) {
	if !ruleIDPattern().MatchString(fr.ID) {
		return nil, &ConfigError{File: file, RuleID: fr.ID, Msg: "rule id must be 1-128 characters of [A-Za-z0-9._-]"}
	}
	bad := func(format string, args ...any) error {
		return &ConfigError{File: file, RuleID: fr.ID, Msg: fmt.Sprintf(format, args...)}
	}
	if fr.Regex == "" && fr.Path == "" && fr.Detector == "" {
		return nil, bad("needs a regex, a path or a detector")
	}
	switch fr.Detector {
	case "", DetectorPassword, DetectorSecret:
	default:
		return nil, bad("unknown detector %q (want password or secret)", fr.Detector)
	}
	if fr.Detector != "" && (fr.Regex != "" || len(fr.Keywords) == 0 || fr.AssignAfterKeyword) {
		return nil, bad("a detector rule has keywords and no regex or assignAfterKeyword")
	}
	r := &Rule{
		ID: fr.ID, Description: fr.Description, SecretGroup: fr.SecretGroup, Entropy: fr.Entropy,
		Tags: fr.Tags, Checksum: fr.Checksum, Validate: fr.Validate, TPs: fr.TPs, FPs: fr.FPs, Source: file,
		AssignAfterKeyword: fr.AssignAfterKeyword, Detector: fr.Detector,
	}
	if fr.Regex != "" {
		re, err := regexp.Compile(fr.Regex)
		if err != nil {
			return nil, bad("bad regex: %s", firstLine(err.Error()))
		}
		r.Regex = re
		if fr.SecretGroup < 0 || fr.SecretGroup > re.NumSubexp() {
			return nil, bad("secretGroup %d but the regex has %d groups", fr.SecretGroup, re.NumSubexp())
		}
		r.multiline = strings.Contains(fr.Regex, `\n`) || strings.Contains(fr.Regex, "(?s") ||
			strings.Contains(fr.Regex, "-----")
	}
	if fr.Path != "" {
		re, err := regexp.Compile(fr.Path)
		if err != nil {
			return nil, bad("bad path regex: %s", firstLine(err.Error()))
		}
		r.Path = re
	}
	if fr.Entropy < 0 || fr.Entropy > 8 {
		return nil, bad("entropy %g is outside 0..8", fr.Entropy)
	}
	switch fr.Checksum {
	case "", ChecksumTokenward, ChecksumGitHub, ChecksumNPM:
	default:
		return nil, bad("unknown checksum %q (want tokenward, github or npm)", fr.Checksum)
	}
	if fr.Validate != "" && fr.Validate != ValidateJWT {
		return nil, bad("unknown validate %q (want jwt)", fr.Validate)
	}
	for _, k := range fr.Keywords {
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			return nil, bad("empty keyword")
		}
		r.Keywords = append(r.Keywords, k)
	}
	if r.AssignAfterKeyword && len(r.Keywords) == 0 {
		return nil, bad("assignAfterKeyword needs keywords")
	}
	r.generic = strings.Contains(strings.ToLower(fr.ID), "generic") || fr.Detector != ""
	als := fr.Allowlists
	if fr.Allowlist != nil {
		als = append([]fileAllowlist{*fr.Allowlist}, als...)
	}
	for i := range als {
		al, err := compileAllowlist(&als[i], false)
		if err != nil {
			return nil, bad("allowlist: %s", err)
		}
		r.Allowlists = append(r.Allowlists, al)
	}
	return r, nil
}

func compileAllowlist(fa *fileAllowlist, global bool) (*Allowlist, error) {
	al := &Allowlist{Description: fa.Description, Commits: fa.Commits, TargetRules: fa.TargetRules}
	if len(fa.TargetRules) > 0 && !global {
		return nil, errors.New("targetRules is only allowed on global allowlists")
	}
	switch strings.ToLower(fa.RegexTarget) {
	case "", TargetSecret:
		al.RegexTarget = TargetSecret
	case TargetMatch:
		al.RegexTarget = TargetMatch
	case TargetLine:
		al.RegexTarget = TargetLine
	default:
		return nil, fmt.Errorf("unknown regexTarget %q (want match, line or secret)", fa.RegexTarget)
	}
	switch strings.ToUpper(fa.Condition) {
	case "", "OR":
		al.Condition = "OR"
	case "AND":
		al.Condition = "AND"
	default:
		return nil, fmt.Errorf("unknown condition %q (want OR or AND)", fa.Condition)
	}
	for _, s := range fa.Regexes {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("bad regex: %s", firstLine(err.Error()))
		}
		al.Regexes = append(al.Regexes, re)
	}
	for _, s := range fa.Paths {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("bad path regex: %s", firstLine(err.Error()))
		}
		al.Paths = append(al.Paths, re)
	}
	for _, s := range fa.Stopwords {
		if s = strings.ToLower(s); s != "" {
			al.Stopwords = append(al.Stopwords, s)
		}
	}
	if len(al.Regexes)+len(al.Paths)+len(al.Stopwords)+len(al.Commits) == 0 {
		return nil, errors.New("allowlist has no regexes, paths, stopwords or commits")
	}
	return al, nil
}

// LoadFS loads every *.toml file at the top of fsys (sorted by name) into one
// Config; a rule id defined twice across files is an error.
func LoadFS(fsys fs.FS) (*Config, error) {
	names, err := fs.Glob(fsys, "*.toml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := &Config{}
	for _, n := range names {
		data, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		c, err := ParseConfig(path.Base(n), data)
		if err != nil {
			return nil, err
		}
		if err := out.Merge(c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Merge adds other's rules and allowlists to c; duplicate rule ids are an
// error naming both files.
func (c *Config) Merge(other *Config) error {
	have := make(map[string]*Rule, len(c.Rules))
	for _, r := range c.Rules {
		have[r.ID] = r
	}
	for _, r := range other.Rules {
		if prev, ok := have[r.ID]; ok {
			return &ConfigError{File: r.Source, RuleID: r.ID, Msg: "duplicate rule id (also in " + prev.Source + ")"}
		}
		have[r.ID] = r
		c.Rules = append(c.Rules, r)
	}
	c.Allowlists = append(c.Allowlists, other.Allowlists...)
	c.DisabledRules = append(c.DisabledRules, other.DisabledRules...)
	c.UseDefault = c.UseDefault || other.UseDefault
	return nil
}

// Extend returns base's rules overlaid by user's: a user rule with the same id
// replaces the built-in one (as gitleaks does), disabled rules are dropped.
func Extend(base, user *Config) *Config {
	out := &Config{}
	byID := map[string]int{}
	disabled := map[string]bool{}
	for _, id := range user.DisabledRules {
		disabled[id] = true
	}
	for _, r := range base.Rules {
		if disabled[r.ID] {
			continue
		}
		byID[r.ID] = len(out.Rules)
		out.Rules = append(out.Rules, r)
	}
	for _, r := range user.Rules {
		if i, ok := byID[r.ID]; ok {
			out.Rules[i] = r
			continue
		}
		out.Rules = append(out.Rules, r)
	}
	out.Allowlists = append(append(out.Allowlists, base.Allowlists...), user.Allowlists...)
	return out
}
