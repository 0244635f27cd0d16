package scan

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Fake AWS access key ids: the shape the test rules match, no real account.
const (
	reviewKey1 = "AKIAZ7VRSQ5TJN2XMGLP"
	reviewKey2 = "AKIAQ3EGZT5NR7WXB2YH"
)

func reviewKeys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path+":"+f.RuleID)
	}
	sort.Strings(out)
	return out
}

// A keyword hit that falls inside the previous window of its rule, but so
// close to that window's end that the window cut its secret, must still be
// scanned: on a long line (a minified bundle) the second key was lost.
func TestLongLineHitNearWindowEnd(t *testing.T) {
	s := MustTestScanner(t, Options{})
	for _, tt := range []struct {
		name string
		gap  int // bytes between the two keys
	}{
		{"far apart", 3000},
		{"second inside first window", 1000},
		{"second cut by first window", 2020},
		{"second starts at window end minus 4", 2027},
		{"second just after window", 2040},
	} {
		t.Run(tt.name, func(t *testing.T) {
			line := reviewKey1 + strings.Repeat(" ", tt.gap) + reviewKey2 + " end\n"
			fs := s.ScanBytes("bundle.min.js", []byte(line))
			if len(fs) != 2 {
				t.Fatalf("got %v; want both keys (second at byte %d)", fs, strings.Index(line, reviewKey2))
			}
		})
	}
}

// scan --staged reads files whose names git quotes or marks in its diff.
func TestStagedOddNames(t *testing.T) {
	s := MustTestScanner(t, Options{})
	for _, name := range []string{
		"plain.env",
		"my creds.env",
		"-leading-dash.env",
		`quo"te.env`,
		`quo"te and space.env`,
		"tab\tname.env",
		"new\nline.env",
		"ünïcode.env",
	} {
		t.Run(strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(name), func(t *testing.T) {
			repo := t.TempDir()
			mustGitT(t, repo, "init", "-q", "-b", "main")
			if err := os.WriteFile(filepath.Join(repo, name), []byte("aws_access_key_id = "+reviewKey1+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			mustGitT(t, repo, "add", "--", name)
			fs, err := s.ScanStaged(context.Background(), repo, GitOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 1 || fs[0].Path != name {
				t.Fatalf("got %v; want one finding in %q", fs, name)
			}
		})
	}
}

// git history holds each blob once but may hold it at several paths; path
// allowlists (the test rules allow (^|/)vendor/) must be judged at each path.
func TestGitBlobAtSeveralPaths(t *testing.T) {
	secret := []byte("aws_access_key_id = " + reviewKey1 + "\n")
	for _, tt := range []struct {
		name  string
		steps [][]string // per commit: "add P" or "mv P Q"
		want  []string
	}{
		{"renamed into vendor", [][]string{{"add app/prod.env"}, {"mv app/prod.env vendor/prod.env"}},
			[]string{"app/prod.env:aws-access-key-id"}},
		{"copied beside vendor", [][]string{{"add zz/prod.env", "add vendor/prod.env"}},
			[]string{"zz/prod.env:aws-access-key-id"}},
		{"moved out of vendor", [][]string{{"add vendor/prod.env"}, {"mv vendor/prod.env app/prod.env"}},
			[]string{"app/prod.env:aws-access-key-id"}},
		{"no vendor", [][]string{{"add app/prod.env"}, {"mv app/prod.env cfg/prod.env"}},
			[]string{"app/prod.env:aws-access-key-id", "cfg/prod.env:aws-access-key-id"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			mustGitT(t, repo, "init", "-q", "-b", "main")
			for i, commit := range tt.steps {
				for _, step := range commit {
					f := strings.Fields(step)
					switch f[0] {
					case "add":
						p := filepath.Join(repo, f[1])
						if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(p, secret, 0o644); err != nil {
							t.Fatal(err)
						}
						mustGitT(t, repo, "add", "--", f[1])
					case "mv":
						if err := os.MkdirAll(filepath.Join(repo, filepath.Dir(f[2])), 0o755); err != nil {
							t.Fatal(err)
						}
						mustGitT(t, repo, "mv", "--", f[1], f[2])
					}
				}
				mustGitT(t, repo, "commit", "-q", "-m", "c"+string(rune('0'+i)))
			}
			s := MustTestScanner(t, Options{})
			fs, err := s.ScanGit(context.Background(), repo, GitOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := reviewKeys(fs); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
		})
	}
}

// A scan root that is itself a symlink to a directory is scanned (the user
// named it); symlinks inside the tree are still not followed.
func TestScanDirSymlinks(t *testing.T) {
	secret := []byte("aws_access_key_id = " + reviewKey1 + "\n")
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "id_rsa.env"), secret, 0o644); err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	if err := os.WriteFile(filepath.Join(tree, "a.env"), secret, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(tree, "ssh")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "id_rsa.env"), filepath.Join(tree, "key.env")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "checkout")
	if err := os.Symlink(tree, link); err != nil {
		t.Fatal(err)
	}
	s := MustTestScanner(t, Options{})
	for _, tt := range []struct {
		name, root string
	}{
		{"real root", tree},
		{"symlinked root", link},
		{"symlinked root with slash", link + string(filepath.Separator)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := s.ScanDir(context.Background(), tt.root, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := reviewKeys(fs); strings.Join(got, ",") != "a.env:aws-access-key-id" {
				t.Fatalf("got %v; want only a.env (links inside the tree not followed)", got)
			}
		})
	}
}

// A finding without a secret (a managed value, whose plaintext the finding
// does not keep, or a path-only rule) must not hide the other findings on
// its line: every string contains "".
func TestEmptySecretDoesNotShadow(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	managed := "mngd-Hq7Zk2Pw9Lx4" // fake managed value
	withManaged := MustTestScanner(t, Options{
		Managed: map[[32]byte]string{ManagedFingerprint(key, []byte(managed)): "p/e/DB"}, ManagedKey: key})
	plain := MustTestScanner(t, Options{})
	generic := `{"api_token":"h7Kq2Lm9Xw4Rt8Zp3Vn6Jd5",`
	for _, tt := range []struct {
		name, path, data string
		s                *Scanner
		want             []string
	}{
		{"managed value on the line", "c.json", generic + `"other":"` + managed + `"}` + "\n", withManaged,
			[]string{"c.json:generic-api-key", "c.json:" + ManagedRuleID}},
		{"managed value hides a generic match of itself", "c.json", `{"api_token":"` + managed + `"}` + "\n", withManaged,
			[]string{"c.json:" + ManagedRuleID}},
		{"path rule on line 1", "a.p12", generic + `"other":"x"}` + "\n", plain,
			[]string{"a.p12:generic-api-key", "a.p12:pkcs12-file"}},
		{"specific rule still shadows", "c.json", `{"api_token":"` + reviewKey1 + `"}` + "\n", plain,
			[]string{"c.json:aws-access-key-id"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := reviewKeys(tt.s.ScanBytes(tt.path, []byte(tt.data))); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
		})
	}
}
