package scan

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

const goldenSecret = "ghp_R8vBq2Xn5TzL0mWc7YhK3pJd9FsA1gE6uNoQ"

func goldenFindings() []Finding {
	return []Finding{
		{RuleID: "github-pat", Description: "GitHub personal access token", Path: "deploy/ci.yml", Line: 12, Column: 18,
			EndLine: 12, EndColumn: 57, Redacted: Redact(goldenSecret), Entropy: 5.1, Confirmed: true,
			Fingerprint: fingerprint("github-pat", "deploy/ci.yml", goldenSecret), secret: goldenSecret,
			Commit: "3f2c1b0a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b", Author: "Ada Lovelace", Email: "ada@example.org",
			Date: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)},
		{RuleID: "generic-api-key", Description: "A high-entropy value, \"quoted\" & <escaped>", Path: "src/app,config.js", Line: 3, Column: 14,
			EndLine: 3, EndColumn: 33, Redacted: "=Zk3****", Entropy: 4.2, Decoded: "base64", Name: "apiKey", Shape: Shape("=Zk3q9XvT2mLp8RwY4nBc"),
			Fingerprint: fingerprint("generic-api-key", "src/app,config.js", "=Zk3q9XvT2mLp8RwY4nBc"), secret: "=Zk3q9XvT2mLp8RwY4nBc"},
		{RuleID: ManagedRuleID, Description: "leak of managed secret prod/db/password", Path: ".env", Line: 1, Column: 13,
			EndLine: 1, EndColumn: 40, Redacted: "S3cr****", Confirmed: true, ManagedSecret: "prod/db/password",
			Fingerprint: fingerprint(ManagedRuleID, ".env", "prod/db/password")},
		{RuleID: "jwt", Description: "JSON Web Token (signed)", Path: "notes.md", Line: 4, Column: 9,
			EndLine: 4, EndColumn: 140, Redacted: "eyJh****", Entropy: 5.57, Shape: "lower+upper+digit+symbol, 132 chars",
			Detail:      "jwt alg RS256, iss https://auth.acme.io/, expired 2025-11-27 (an old token: lower risk, still revoke it)",
			Fingerprint: fingerprint("jwt", "notes.md", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2F1dGguYWNtZS5pby8ifQ.sig")},
	}
}

func TestReportGolden(t *testing.T) {
	exts := map[string]string{"text": "txt", "json": "json", "sarif": "sarif", "csv": "csv", "junit": "xml"}
	for _, format := range Formats {
		for _, set := range []string{"findings", "empty"} {
			t.Run(format+"/"+set, func(t *testing.T) {
				fs := goldenFindings()
				if set == "empty" {
					fs = nil
				}
				var buf bytes.Buffer
				if err := WriteReport(&buf, format, fs, ReportInfo{ToolVersion: "test"}); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(buf.String(), goldenSecret[4:]) || strings.Contains(buf.String(), "Zk3q9XvT2m") {
					t.Errorf("report holds a secret in plaintext")
				}
				golden := filepath.Join("..", "..", "testdata", "scan", "golden", set+"."+exts[format])
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create)", err)
				}
				if got := buf.String(); got != string(want) {
					t.Errorf("got:\n%s\nwant:\n%s", got, want)
				}
			})
		}
	}
}

func TestTextReportStripsControlCharacters(t *testing.T) {
	f := goldenFindings()[:1]
	f[0].Path = "evil\x1b]0;pwned\x07.txt"
	f[0].Author = "a\nb"
	var buf bytes.Buffer
	if err := WriteReport(&buf, "text", f, ReportInfo{}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(buf.String(), "\x1b\x07") || strings.Contains(buf.String(), "a\nb") {
		t.Errorf("got %q; want control characters replaced", buf.String())
	}
}

func TestSARIFRequiredFields(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteReport(&buf, "sarif", goldenFindings(), ReportInfo{}); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "tokenward" {
		t.Fatalf("got version %q, %d runs; want 2.1.0 and one tokenward run", log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	for i, r := range run.Results {
		if r.RuleID == "" || r.Level == "" || r.Message.Text == "" || len(r.PartialFingerprints) == 0 {
			t.Errorf("result %d: got %+v; want ruleId, level, message and partialFingerprints", i, r)
		}
		if len(r.Locations) != 1 || r.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" ||
			r.Locations[0].PhysicalLocation.Region.StartLine < 1 {
			t.Errorf("result %d: got locations %+v; want a uri and startLine", i, r.Locations)
		}
		if run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("result %d: ruleIndex %d names %q; want %q", i, r.RuleIndex, run.Tool.Driver.Rules[r.RuleIndex].ID, r.RuleID)
		}
	}
}

func TestBaseline(t *testing.T) {
	fs := goldenFindings()[:3]
	var buf bytes.Buffer
	if err := WriteReport(&buf, "json", fs[:2], ReportInfo{}); err != nil {
		t.Fatal(err)
	}
	b, err := ReadBaseline(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := b.Filter(fs)
	if len(got) != 1 || got[0].RuleID != ManagedRuleID {
		t.Errorf("got %v; want only the finding not in the baseline", got)
	}
	for _, bad := range []string{"{", `[{"rule_id":"x"}]`, `{"a":1}`} {
		if _, err := ReadBaseline(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadBaseline(%q): got nil error; want one", bad)
		}
	}
}

func FuzzReadBaseline(f *testing.F) {
	f.Add([]byte(`[{"fingerprint":"ab"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ReadBaseline(bytes.NewReader(data))
	})
}
