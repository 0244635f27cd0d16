package scan

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/scan/rules"
)

// FuzzRuleConfig checks a rule file (--config, .tokenward-scan.toml, a
// gitleaks TOML) from parse to findings: a refusal is a ConfigError naming
// the file; what ParseConfig accepts the scanner accepts too, alone and on
// top of the built-in rules ([extend] useDefault), with rule ids unique and
// merged once only; and a scan with it reports only its rules, at 1-based
// positions inside the input, showing at most a quarter of a secret.
func FuzzRuleConfig(f *testing.F) {
	f.Add([]byte("[[rules]]\nid = \"a\"\nregex = '(?i)key=(\\w+)'\nsecretGroup = 1\nkeywords=[\"key\"]\n"), []byte("x\nKEY=abcdefgh12345678\n"))
	f.Add([]byte("[extend]\nuseDefault = true\ndisabledRules = [\"generic-api-key\"]\n[[rules]]\nid = \"b\"\nregex = '''tok_[a-z0-9]{8}'''\nentropy = 2.0\n[[rules.allowlists]]\nregexes = ['''tok_00000000''']\n"), []byte("tok_abcd1234 tok_00000000"))
	f.Add([]byte("[[rules]]\nid = \"p\"\npath = '''\\.pem$'''\n"), []byte("-----BEGIN"))
	f.Add([]byte("[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules]]\nid = \"a\"\nregex = 'y'\n"), []byte("xy"))
	f.Add([]byte("[[rules]]\nid = \"r\"\nregex = '(' \n"), []byte(""))
	f.Add([]byte("[allowlist]\npaths = ['''^vendor/''']\nstopwords = [\"example\"]\n"), []byte("example"))
	builtin, err := LoadFS(rules.FS)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data, sample []byte) {
		cfg, err := ParseConfig("fuzz.toml", data)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != "fuzz.toml" {
				t.Fatalf("got %T %v; want a *ConfigError for fuzz.toml", err, err)
			}
			return
		}
		ids := map[string]bool{}
		for _, r := range cfg.Rules {
			if r.ID == "" || ids[r.ID] {
				t.Fatalf("got rule id %q twice or empty", r.ID)
			}
			ids[r.ID] = true
		}
		var merged Config
		if err := merged.Merge(cfg); err != nil {
			t.Fatalf("merging into nothing: %v", err)
		}
		if err := merged.Merge(cfg); len(cfg.Rules) > 0 && err == nil {
			t.Fatal("merging the same rules twice: got no duplicate error")
		}
		ext := Extend(builtin, cfg)
		seen := map[string]bool{}
		for _, r := range ext.Rules {
			if seen[r.ID] {
				t.Fatalf("extended rules hold %q twice", r.ID)
			}
			seen[r.ID] = true
		}
		if _, err := New(ext, Options{}); err != nil {
			t.Fatalf("New refused the rules extended with an accepted file: %v", err)
		}
		s, err := New(cfg, Options{DecodeDepth: -1})
		if err != nil {
			t.Fatalf("New refused an accepted file: %v", err)
		}
		lines := bytes.Count(sample, []byte("\n")) + 1
		for _, fd := range s.ScanBytes("fuzz.txt", sample) {
			if !ids[fd.RuleID] {
				t.Fatalf("got a finding of rule %q, which the file does not have", fd.RuleID)
			}
			if fd.Line < 1 || fd.Column < 1 || fd.Line > lines || fd.EndLine < fd.Line || fd.EndLine > lines {
				t.Fatalf("got position %d:%d-%d:%d in %d lines", fd.Line, fd.Column, fd.EndLine, fd.EndColumn, lines)
			}
			shown, ok := strings.CutSuffix(fd.Redacted, "****")
			if secret := fd.Secret(); !ok || !strings.HasPrefix(secret, shown) || 4*len(shown) > len(secret) {
				t.Fatalf("got redacted %q of a %d-byte secret; want at most a quarter of it", fd.Redacted, len(secret))
			}
		}
	})
}
