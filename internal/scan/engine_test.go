package scan

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

// MustTestScanner loads testdata/scan/rules/test.toml.
func MustTestScanner(tb testing.TB, opts Options) *Scanner {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "scan", "rules", "test.toml"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := ParseConfig("test.toml", data)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// githubToken builds a token with a valid checksum from a seeded generator.
func githubToken(prefix string, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	for range 30 {
		b.WriteByte(b62[r.IntN(62)])
	}
	return prefix + b.String() + base62CRC(b.String())
}

func mustTokenwardToken(tb testing.TB) string {
	tb.Helper()
	tok, err := tokenward.NewTokenSecret(tokenward.TokenService)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestChecksums(t *testing.T) {
	gh := githubToken("ghp_", 1)
	npm := githubToken("npm_", 2)
	broken := gh[:39] + string(b62[(strings.IndexByte(b62, gh[39])+1)%62])
	tests := []struct {
		name string
		fn   func(string) bool
		in   string
		want bool
	}{
		{"github valid", GitHubChecksumValid, gh, true},
		{"github gho valid", GitHubChecksumValid, githubToken("gho_", 3), true},
		{"github last char changed", GitHubChecksumValid, broken, false},
		{"github wrong prefix", GitHubChecksumValid, "ghx_" + gh[4:], false},
		{"github short", GitHubChecksumValid, gh[:39], false},
		{"npm valid", NPMChecksumValid, npm, true},
		{"npm as github", GitHubChecksumValid, npm, false},
		{"npm bad char", NPMChecksumValid, npm[:10] + "-" + npm[11:], false},
		{"tokenward valid", checksumValidators[ChecksumTokenward], mustTokenwardToken(t), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(tt.in); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestScanBytes(t *testing.T) {
	s := MustTestScanner(t, Options{})
	gh := githubToken("ghp_", 11)
	ghBad := gh[:38] + "00"
	if GitHubChecksumValid(ghBad) {
		ghBad = gh[:38] + "01"
	}
	tw := mustTokenwardToken(t)
	pem := "-----BEGIN RSA PRIVATE KEY-----\n" + strings.Repeat("MIIEpAIBAAKCAQEAq7BFUAv7Nq3rd2kKrG8OVbKmVbUZvWZdZ9QzL1f3\n", 4) + "-----END RSA PRIVATE KEY-----\n"
	tests := []struct {
		name      string
		path      string
		in        string
		wantRules []string
		confirmed bool
	}{
		{"github token confirmed", "a.go", "token := \"" + gh + "\"\n", []string{"github-pat"}, true},
		{"github token bad checksum", "a.go", "x := \"" + ghBad + "\"\n", nil, false},
		{"tokenward token", "ci.yml", "TOKENWARD_TOKEN: " + tw + "\n", []string{"tokenward-token"}, true},
		{"aws key", "cfg.ini", "aws_access_key_id = AKIAZ7VRSQ5TJN2XMGLP\n", []string{"aws-access-key-id"}, false},
		{"aws example key", "cfg.ini", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", nil, false},
		{"generic high entropy", "app.env", "API_KEY=Zk3q9XvT2mLp8RwY4nBc\n", []string{"generic-api-key"}, false},
		{"generic low entropy", "app.env", "API_KEY=aaaaaaaaaabbbbbbbbbb\n", nil, false},
		{"generic placeholder", "app.env", "API_KEY=<your-api-key-here>\n", nil, false},
		{"generic template", "app.env", "API_KEY=${API_KEY_FROM_VAULT}\n", nil, false},
		{"generic uuid", "app.env", "api_key = \"9f1c3a52-7b4e-4d2a-9c1f-3e5b7a9d2c4f\"\n", nil, false},
		{"generic sha256", "app.env", "secret = \"9f1c3a527b4e4d2a9c1f3e5b7a9d2c4f9f1c3a527b4e4d2a9c1f3e5b7a9d2c4f\"\n", nil, false},
		{"generic in lock file", "package-lock.json", "\"token\": \"Zk3q9XvT2mLp8RwY4nBc\"\n", nil, false},
		{"rule stopword", "app.env", "API_KEY=notasecretZk3q9XvT2mLp8\n", nil, false},
		{"inline allow", "app.env", "API_KEY=Zk3q9XvT2mLp8RwY4nBc # tokenward:allow\n", nil, false},
		{"global path allowlist", "vendor/x/app.env", "API_KEY=Zk3q9XvT2mLp8RwY4nBc\n", nil, false},
		{"pem multi-line", "id_rsa", pem, []string{"private-key"}, false},
		{"path rule", "certs/client.p12", "", []string{"pkcs12-file"}, false},
		{"binary skipped", "a.bin", "\x00\x01API_KEY=Zk3q9XvT2mLp8RwY4nBc\n", nil, false},
		{"base64 encoded github token", "k8s.yaml", "data: " + b64(gh) + "\n", []string{"github-pat"}, true},
		{"hex encoded aws key", "x.txt", "blob " + hexs("id = AKIAZ7VRSQ5TJN2XMGLP and more") + "\n", []string{"aws-access-key-id"}, false},
		{"percent encoded aws key", "x.txt", "u=" + "id%3DAKIAZ7VRSQ5TJN2XMGLP%26x%3D1" + "\n", []string{"aws-access-key-id"}, false},
		{"base64 of base64", "x.txt", "v: " + b64(b64("tok "+gh+" end")) + "\n", []string{"github-pat"}, true},
		{"specific shadows generic", "app.env", "GITHUB_TOKEN=" + gh + "\n", []string{"github-pat"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := s.ScanBytes(tt.path, []byte(tt.in))
			var got []string
			for _, f := range fs {
				got = append(got, f.RuleID)
				if f.Confirmed != tt.confirmed {
					t.Errorf("%s confirmed = %v; want %v", f.RuleID, f.Confirmed, tt.confirmed)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.wantRules, ",") {
				t.Errorf("got rules %v; want %v", got, tt.wantRules)
			}
		})
	}
}

func TestScanPositionsAndRedaction(t *testing.T) {
	s := MustTestScanner(t, Options{})
	gh := githubToken("ghp_", 5)
	in := "line one\n\n  x = \"" + gh + "\"\n"
	fs := s.ScanBytes("a.txt", []byte(in))
	if len(fs) != 1 {
		t.Fatalf("got %d findings; want 1", len(fs))
	}
	f := fs[0]
	if f.Line != 3 || f.Column != 8 || f.EndColumn != 47 {
		t.Errorf("got %d:%d-%d; want 3:8-47", f.Line, f.Column, f.EndColumn)
	}
	if f.Redacted != "ghp_****" {
		t.Errorf("got redacted %q; want %q", f.Redacted, "ghp_****")
	}
	if f.Secret() != gh {
		t.Errorf("Secret() does not return the token")
	}
	if strings.Contains(f.String(), gh[4:]) || strings.Contains(f.Fingerprint, gh[4:]) {
		t.Errorf("finding text leaks the secret")
	}
}

func TestManagedFingerprints(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	values := map[string]string{
		"prod/db/url":    "postgres://app:S3cr3t-P4ss@db.internal:5432/app",
		"prod/api/plain": "hunter2-but-longer-value",
		"prod/spaced":    "correct horse battery staple",
	}
	managed := map[[32]byte]string{}
	for path, v := range values {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(v))
		var sum [32]byte
		copy(sum[:], m.Sum(nil))
		if ManagedFingerprint(key, []byte(v)) != sum {
			t.Fatalf("ManagedFingerprint differs from HMAC-SHA256")
		}
		managed[sum] = path
	}
	s := MustTestScanner(t, Options{Managed: managed, ManagedKey: key})
	tests := []struct {
		name, in, want string
	}{
		{"url in yaml", "database:\n  url: postgres://app:S3cr3t-P4ss@db.internal:5432/app\n", "prod/db/url"},
		{"bare value in code", "connect(x, hunter2-but-longer-value)\n", "prod/api/plain"},
		{"quoted with spaces", "phrase = \"correct horse battery staple\";\n", "prod/spaced"},
		{"base64 of value", "v: " + b64("hunter2-but-longer-value") + "\n", "prod/api/plain"},
		{"prefix only", "x = hunter2-but-longer-valu\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range s.ScanBytes("f.txt", []byte(tt.in)) {
				if f.RuleID != ManagedRuleID {
					continue
				}
				got = append(got, f.ManagedSecret)
				if !f.Confirmed || f.Secret() != "" {
					t.Errorf("got confirmed=%v secret kept=%v; want confirmed and no plaintext", f.Confirmed, f.Secret() != "")
				}
			}
			want := []string{}
			if tt.want != "" {
				want = []string{tt.want}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("got %v; want %v", got, want)
			}
		})
	}
}

func TestAdversarialLongLine(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB input")
	}
	s := MustTestScanner(t, Options{MaxFileSize: 64 << 20})
	// One 50 MB line, like a minified bundle: base64-looking filler (one run
	// too long to decode) with a credential assignment every 64 KB. The
	// bounded windows keep this linear; the test timeout is the bound.
	filler := bytes.Repeat([]byte("QmFzZTY0IGZpbGxlcg+/"), (64<<10)/20)
	unit := append(append([]byte{}, filler...), " api_key=Zk3q9XvT2mLp8RwY4nBc "...)
	data := bytes.Repeat(unit, (50<<20)/len(unit))
	fs := s.ScanBytes("big.min.js", data)
	if want := (50 << 20) / len(unit); len(fs) != want {
		t.Errorf("got %d findings; want %d", len(fs), want)
	}
	// Dense keyword hits on one line stay correct too.
	dense := bytes.Repeat([]byte("key=Zk3q9XvT2mLp8RwY4nBc token:aGVsbG8gd29ybGQgdG9rZW4= -----BEGIN "), 8<<10)
	if fs := s.ScanBytes("dense.txt", dense); len(fs) != 2*8<<10 { // key= and token: each
		t.Errorf("got %d dense findings; want %d", len(fs), 2*8<<10)
	}
}
