package scan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/scan/rules"
)

func TestBuiltinRulesSamples(t *testing.T) {
	cfg, err := LoadFS(rules.FS)
	if err != nil {
		t.Fatalf("loading built-in rules: %v", err)
	}
	if len(cfg.Rules) < 150 {
		t.Errorf("got %d built-in rules; want at least 150", len(cfg.Rules))
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if slow := s.SlowRules(); len(slow) > 0 {
		t.Logf("rules without keywords (run on every buffer): %v", slow)
	}
	w := s.NewWorker()
	for _, r := range cfg.Rules {
		t.Run(r.ID, func(t *testing.T) {
			if r.Regex != nil && len(r.TPs) == 0 {
				t.Errorf("rule has no tps samples")
			}
			path := "sample.txt"
			if r.Path != nil {
				path = samplePathFor(r)
			}
			for i, tp := range r.TPs {
				fs := w.Scan(path, []byte(tp))
				if r.Detector != "" && len(fs) > 0 {
					continue // another rule's finding of the value wins; TestDetectorSamples runs the rule alone
				}
				if !hasRule(fs, r.ID) {
					t.Errorf("tps[%d] (%d bytes): got no %s finding; want one", i, len(tp), r.ID)
				}
			}
			for i, fp := range r.FPs {
				if hasRule(w.Scan(path, []byte(fp)), r.ID) {
					t.Errorf("fps[%d] (%d bytes): got a %s finding; want none", i, len(fp), r.ID)
				}
			}
		})
	}
}

// samplePathFor returns a path that a path-restricted rule applies to: the
// rule's own tps may name it in a leading "path:" line, else a guess.
func samplePathFor(r *Rule) string {
	for _, p := range []string{"sample.txt", ".env", "config.properties", "id_rsa", "x.p12", "x.pem",
		".npmrc", ".pypirc", "settings.xml", ".git-credentials", ".netrc", ".dockercfg", "docker/config.json",
		"terraform.tfvars", "credentials", ".aws/credentials", "x.tf", "x.yaml", "x.json", "x.kdbx", "x.jks", "x.pfx", "x.key"} {
		if r.Path.MatchString(p) {
			return p
		}
	}
	return "sample.txt"
}

func hasRule(fs []Finding, id string) bool {
	for _, f := range fs {
		if f.RuleID == id {
			return true
		}
	}
	return false
}

func TestGitleaksConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "scan", "rules", "gitleaks.toml"))
	if err != nil {
		t.Fatal(err)
	}
	user, err := ParseConfig("gitleaks.toml", data)
	if err != nil {
		t.Fatalf("got %v; want a gitleaks config to load", err)
	}
	if !user.UseDefault {
		t.Errorf("got useDefault false; want true")
	}
	base, err := LoadFS(rules.FS)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Extend(base, user)
	if hasRuleID(cfg, "generic-api-key") {
		t.Errorf("got generic-api-key; want it disabled")
	}
	if !hasRuleID(cfg, "acme-internal-token") {
		t.Errorf("got no acme-internal-token; want the user's rule added")
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, in string
		want           bool
	}{
		{"custom rule", "svc.go", "t := \"acme_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\"", true},
		{"rule allowlist (singular form)", "fixtures/svc.go", "t := \"acme_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\"", false},
		{"global allowlist path", "third_party/x.go", "t := \"acme_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\"", false},
		{"path-restricted rule, right path", "app.properties", "legacy.password = Qz8xLm2Rt7Vn", true},
		{"path-restricted rule, other path", "app.yaml", "legacy.password = Qz8xLm2Rt7Vn", false},
		{"AND allowlist, both hold", "app.properties", "legacy.password = Qz8legacyRt7Vn # rotated", false},
		{"AND allowlist, one holds", "app.properties", "legacy.password = Qz8xLm2Rt7Vn # rotated", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs []Finding
			for _, f := range s.ScanBytes(tt.path, []byte(tt.in)) {
				if strings.HasPrefix(f.RuleID, "acme-") {
					fs = append(fs, f)
				}
			}
			if got := len(fs) > 0; got != tt.want {
				t.Errorf("got findings %v; want %v", fs, tt.want)
			}
		})
	}
}

func hasRuleID(c *Config, id string) bool {
	for _, r := range c.Rules {
		if r.ID == id {
			return true
		}
	}
	return false
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown key", "[[rules]]\nid = \"a\"\nregex = 'x'\nregexx = 'y'\n", `f.toml: unknown key rules.regexx`},
		{"bad regex", "[[rules]]\nid = \"a\"\nregex = '(x'\n", `f.toml: rule "a": bad regex`},
		{"duplicate id", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules]]\nid = \"a\"\nregex = 'y'\n", `f.toml: rule "a": duplicate rule id`},
		{"bad checksum", "[[rules]]\nid = \"a\"\nregex = 'x'\nchecksum = \"crc\"\n", `rule "a": unknown checksum "crc"`},
		{"secret group too big", "[[rules]]\nid = \"a\"\nregex = '(x)'\nsecretGroup = 2\n", `rule "a": secretGroup 2`},
		{"bad id", "[[rules]]\nid = \"a b\"\nregex = 'x'\n", `rule "a b": rule id must be`},
		{"no regex", "[[rules]]\nid = \"a\"\n", `rule "a": needs a regex, a path or a detector`},
		{"unknown detector", "[[rules]]\nid = \"a\"\ndetector = \"pin\"\nkeywords = [\"pin\"]\n", `rule "a": unknown detector "pin"`},
		{"detector with regex", "[[rules]]\nid = \"a\"\ndetector = \"password\"\nregex = 'x'\nkeywords = [\"pass\"]\n", `rule "a": a detector rule has keywords and no regex`},
		{"detector without keywords", "[[rules]]\nid = \"a\"\ndetector = \"secret\"\n", `rule "a": a detector rule has keywords and no regex`},
		{"bad regexTarget", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.allowlists]]\nregexTarget = \"file\"\nregexes = ['y']\n", `rule "a": allowlist: unknown regexTarget "file"`},
		{"empty allowlist", "[allowlist]\ndescription = \"x\"\n", `global allowlist: allowlist has no`},
		{"invalid toml", "[[rules]\n", `f.toml: invalid TOML`},
		{"composite rules", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[rules.required]]\nid = \"b\"\n", `composite rules are not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("f.toml", []byte(tt.in))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v; want a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q; want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMergeDuplicateAcrossFiles(t *testing.T) {
	a, _ := ParseConfig("a.toml", []byte("[[rules]]\nid = \"x\"\nregex = 'x'\n"))
	b, _ := ParseConfig("b.toml", []byte("[[rules]]\nid = \"x\"\nregex = 'y'\n"))
	err := a.Merge(b)
	if err == nil || !strings.Contains(err.Error(), `b.toml: rule "x": duplicate rule id (also in a.toml)`) {
		t.Errorf("got %v; want a duplicate error naming both files", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"test.toml", "gitleaks.toml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "scan", "rules", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[[rules]]\nid = \"a\"\nregex = '(?i)key=(\\w+)'\nsecretGroup = 1\nkeywords=[\"key\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.toml", data)
		if err != nil {
			return
		}
		s, err := New(cfg, Options{})
		if err != nil {
			return
		}
		s.ScanBytes("x.txt", data)
	})
}

func FuzzScan(f *testing.F) {
	f.Add([]byte("API_KEY=Zk3q9XvT2mLp8RwY4nBc\n"))
	f.Add([]byte("data: " + b64("token ghp_000000000000000000000000000000000000") + "\n"))
	f.Add([]byte("%41%42%43 616263646566676869 -----BEGIN RSA PRIVATE KEY-----\n"))
	s := MustTestScanner(f, Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fd := range s.ScanBytes("fuzz.txt", data) {
			if fd.Line < 1 || fd.Column < 1 {
				t.Fatalf("got position %d:%d; want 1-based", fd.Line, fd.Column)
			}
		}
	})
}
