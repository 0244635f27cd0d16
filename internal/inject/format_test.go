package inject

import (
	"bytes"
	"errors"
	"flag"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

var update = flag.Bool("update", false, "rewrite golden files")

// trickyValues exercise quoting in every format.
var trickyValues = map[string]string{
	"SINGLE_QUOTE": "it's 'quoted'",
	"DOUBLE_QUOTE": `say "hi"`,
	"DOLLAR":       "$HOME ${PATH} $(id) `id`",
	"BACKSLASH":    `C:\temp\new \\ \n \'`,
	"EQUALS":       "a=b==c",
	"UNICODE":      "pässwörd-✓-秘密-🔑",
	"MULTILINE":    "-----BEGIN KEY-----\nline 'two' \"x\" $y\n\n-----END KEY-----\n",
	"CRLF":         "one\r\ntwo",
	"EMPTY":        "",
	"SPACES":       "  padded  ",
	"HASH":         "value # not a comment",
	"DELIM":        "ghadelimiter_0000\nEOF",
	"PERCENT":      "100%0A done",
}

// singleLine keeps the values GitLab's dotenv can carry.
func singleLine(vals map[string]string) map[string]string {
	out := map[string]string{}
	for n, v := range vals {
		if !strings.ContainsAny(v, "\r\n") && strings.TrimSpace(v) == v {
			out[n] = v
		}
	}
	return out
}

func TestExportRoundTrip(t *testing.T) {
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			vals := trickyValues
			if f == FormatGitLab {
				vals = singleLine(trickyValues)
			}
			data, err := Encode(f, vals)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(f, data)
			if err != nil {
				t.Fatalf("Decode: %v\n%s", err, data)
			}
			if !maps.Equal(got, vals) {
				for n := range vals {
					if got[n] != vals[n] {
						t.Errorf("%s: got %q; want %q", n, got[n], vals[n])
					}
				}
				t.Errorf("got %d values; want %d", len(got), len(vals))
			}
		})
	}
}

var delimRE = regexp.MustCompile(`ghadelimiter_[0-9a-f]{32}`)

func TestExportGolden(t *testing.T) {
	vals := map[string]string{"API_KEY": "sk_live_4eC39Hq", "DB_URL": "postgres://u:p@db/app?x=1&y='2'", "NOTE": "multi\nline"}
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			in := vals
			if f == FormatGitLab {
				in = singleLine(vals)
			}
			data, err := Encode(f, in)
			if err != nil {
				t.Fatal(err)
			}
			if f == FormatGitHub {
				env, masks, err := EncodeGitHub(in)
				if err != nil {
					t.Fatal(err)
				}
				data = append(delimRE.ReplaceAll(env, []byte("ghadelimiter_RANDOM")), append([]byte("--- stdout ---\n"), masks...)...)
			}
			golden := filepath.Join("testdata", "export", string(f)+".golden")
			if *update {
				os.WriteFile(golden, data, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, want) {
				t.Errorf("got:\n%s\nwant:\n%s", data, want)
			}
		})
	}
}

// TestShellSourcedBySh sources the shell export with /bin/sh and prints every
// value back, NUL-terminated.
func TestShellSourcedBySh(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh: %v", err)
	}
	data, err := Encode(FormatShell, trickyValues)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "env.sh")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	names := sortedNames(trickyValues)
	script := ". \"$1\"\n"
	for _, n := range names {
		script += "printf '%s\\000' \"$" + n + "\"\n"
	}
	out, err := exec.Command(sh, "-c", script, "sh", file).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	got := strings.Split(string(out), "\x00")
	if len(got) != len(names)+1 {
		t.Fatalf("got %d values from sh; want %d", len(got)-1, len(names))
	}
	for i, n := range names {
		if got[i] != trickyValues[n] {
			t.Errorf("%s: got %q; want %q", n, got[i], trickyValues[n])
		}
	}
}

func TestEncodeGitHub(t *testing.T) {
	vals := map[string]string{"A": "one\ntwo%\n\n", "B": "three"}
	env1, masks, err := EncodeGitHub(vals)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(masks), "::add-mask::one\n::add-mask::two%25\n::add-mask::three\n"; got != want {
		t.Errorf("masks: got %q; want %q", got, want)
	}
	delims := delimRE.FindAllString(string(env1), -1)
	if len(delims) != 4 || delims[0] != delims[1] || delims[2] != delims[3] || delims[0] == delims[2] {
		t.Errorf("delimiters %q; want one random delimiter per value, used twice each", delims)
	}
	env2, _, _ := EncodeGitHub(vals)
	if bytes.Equal(env1, env2) {
		t.Errorf("two encodings are equal; want fresh random delimiters each time")
	}
	// The runner appends: two exports into one file still parse.
	got, err := Decode(FormatGitHub, append(env1, []byte("C=plain\n")...))
	if err != nil {
		t.Fatal(err)
	}
	if got["A"] != vals["A"] || got["B"] != "three" || got["C"] != "plain" {
		t.Errorf("got %q; want A, B and C", got)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		f      Format
		vals   map[string]string
		code   string
		substr string
	}{
		{"gitlab multi-line", FormatGitLab, map[string]string{"K": "a\nb"}, tokenward.EINVALID, "multi-line"},
		{"gitlab carriage return", FormatGitLab, map[string]string{"K": "a\rb"}, tokenward.EINVALID, "multi-line"},
		{"gitlab blanks", FormatGitLab, map[string]string{"K": " a"}, tokenward.EINVALID, "blanks"},
		{"gitlab too large", FormatGitLab, map[string]string{"K": strings.Repeat("x", GitLabMaxDotenvSize)}, tokenward.ETOOLARGE, "5120"},
		{"bad name", FormatDotenv, map[string]string{"1BAD": "x"}, tokenward.EINVALID, "environment variable name"},
		{"NUL", FormatShell, map[string]string{"K": "a\x00b"}, tokenward.EINVALID, "NUL"},
		{"json not utf-8", FormatJSON, map[string]string{"K": "\xff"}, tokenward.EINVALID, "UTF-8"},
		{"unknown format", Format("yaml"), map[string]string{"K": "v"}, tokenward.EINVALID, "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.f, tt.vals)
			if got := tokenward.ErrorCode(err); got != tt.code {
				t.Errorf("code: got %q (%v); want %q", got, err, tt.code)
			}
			if err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("got %v; want an error mentioning %q", err, tt.substr)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		f    Format
		data string
	}{
		{FormatDotenv, "K=\"open\n"},
		{FormatDotenv, "K='open\n"},
		{FormatDotenv, "no equals\n"},
		{FormatDotenv, "K=1\nK=2\n"},
		{FormatDotenv, "K='a' trailing\n"},
		{FormatShell, "K='x'\n"},
		{FormatShell, "export K=x\n"},
		{FormatShell, "export K='open\n"},
		{FormatJSON, `{"K": 1}`},
		{FormatJSON, `["K"]`},
		{FormatJSON, `null`},
		{FormatJSON, `{"K":"v"} {}`},
		{FormatJSON, `{"bad name":"v"}`},
		{FormatGitHub, "K<<EOF\nvalue\n"},
		{FormatGitHub, "just text\n"},
		{FormatGitLab, "A=1\n\nB=2\n"},
		{FormatGitLab, "# comment\n"},
		{FormatGitLab, strings.Repeat("A=1234567\n", 600)},
	}
	for _, tt := range tests {
		if got, err := Decode(tt.f, []byte(tt.data)); err == nil {
			t.Errorf("Decode(%s, %q) = %q, nil; want an error", tt.f, tt.data, got)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats {
		if got, err := ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q, nil", f, got, err, f)
		}
	}
	if _, err := ParseFormat("toml"); err == nil {
		t.Errorf("ParseFormat(toml): got nil error; want one")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.env")
	for _, content := range []string{"first\n", "second, longer\n"} {
		if err := WriteFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != content {
			t.Errorf("got %q; want %q", got, content)
		}
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode: got %o; want 600", st.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries; want only the file (no temporary left)", len(entries))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), nil); err == nil {
		t.Errorf("write into a missing directory: got nil error; want one")
	}
	if err := AppendFile(path, []byte("more\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "second, longer\nmore\n" {
		t.Errorf("after append: got %q", got)
	}
	var pe *os.PathError
	if err := AppendFile(filepath.Join(dir, "missing", "x"), nil); !errors.As(err, &pe) {
		t.Errorf("append into a missing directory: got %v; want a path error", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, fm := range Formats {
		vals := trickyValues
		if fm == FormatGitLab {
			vals = singleLine(vals)
		}
		data, _ := Encode(fm, vals)
		f.Add(string(fm), data)
	}
	f.Add("dotenv", []byte("export A=\"x\\q\" # c\nB=plain # c\n"))
	f.Fuzz(func(t *testing.T, format string, data []byte) {
		fm, err := ParseFormat(format)
		if err != nil {
			return
		}
		vals, err := Decode(fm, data)
		if err != nil {
			return
		}
		// Whatever parses must survive encode → decode unchanged.
		enc, err := Encode(fm, vals)
		if err != nil {
			return // e.g. a NUL byte or a value GitLab cannot carry
		}
		again, err := Decode(fm, enc)
		if err != nil {
			t.Fatalf("re-decode: %v\n%q", err, enc)
		}
		if !maps.Equal(again, vals) {
			t.Fatalf("got %q; want %q", again, vals)
		}
	})
}
