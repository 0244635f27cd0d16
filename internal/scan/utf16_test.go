package scan

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// utf16Bytes encodes s as UTF-16 (little- or big-endian) after bom.
func utf16Bytes(s string, bigEndian bool, bom string) []byte {
	out := []byte(bom)
	for _, u := range utf16.Encode([]rune(s)) {
		if bigEndian {
			out = binary.BigEndian.AppendUint16(out, u)
		} else {
			out = binary.LittleEndian.AppendUint16(out, u)
		}
	}
	return out
}

const (
	bomLE = "\xff\xfe"
	bomBE = "\xfe\xff"
)

// A secret in a UTF-16 file with a byte order mark (PowerShell 5, reg
// export, Visual Studio) is found at its line and column in the decoded text.
func TestScanUTF16(t *testing.T) {
	s := MustTestScanner(t, Options{})
	ps1 := "# deploy\r\n\r\n$env:AWS = 'aws_access_key_id = " + reviewKey1 + "'\r\n"
	emoji := "x = \U0001F511 aws_access_key_id = " + reviewKey1 + "\n"
	for _, tt := range []struct {
		name     string
		data     []byte
		wantLine int // 0: no finding
		wantCol  int
	}{
		{"LE with BOM", utf16Bytes(ps1, false, bomLE), 3, strings.Index(ps1, reviewKey1) - strings.LastIndex(ps1[:strings.Index(ps1, reviewKey1)], "\n")},
		{"BE with BOM", utf16Bytes(ps1, true, bomBE), 3, strings.Index(ps1, reviewKey1) - strings.LastIndex(ps1[:strings.Index(ps1, reviewKey1)], "\n")},
		{"LE odd trailing byte", append(utf16Bytes(ps1, false, bomLE), 'x'), 3, strings.Index(ps1, reviewKey1) - strings.LastIndex(ps1[:strings.Index(ps1, reviewKey1)], "\n")},
		{"surrogate pair before the key", utf16Bytes(emoji, false, bomLE), 1, strings.Index(emoji, reviewKey1) + 1},
		// Without a BOM, UTF-16 stays binary (see docs/scanning.md).
		{"LE without BOM", utf16Bytes(ps1, false, ""), 0, 0},
		{"UTF-32LE BOM", append([]byte("\xff\xfe\x00\x00"), utf16Bytes(ps1, false, "")...), 0, 0},
		// A U+0000 in the decoded text: binary after all.
		{"LE with BOM and a NUL", utf16Bytes("\x00"+ps1, false, bomLE), 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := s.ScanBytes("deploy.ps1", tt.data)
			if tt.wantLine == 0 {
				if len(fs) != 0 {
					t.Fatalf("got %v; want no findings", fs)
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("got %v; want one finding", fs)
			}
			if got := fs[0]; got.RuleID != "aws-access-key-id" || got.Line != tt.wantLine || got.Column != tt.wantCol || got.Secret() != reviewKey1 {
				t.Errorf("got %s at %d:%d; want aws-access-key-id at %d:%d", got.RuleID, got.Line, got.Column, tt.wantLine, tt.wantCol)
			}
		})
	}
}

// Files on disk, staged files and history blobs go through the same check.
func TestScanUTF16Sources(t *testing.T) {
	s := MustTestScanner(t, Options{})
	content := utf16Bytes("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Ci]\r\n\"Key\"=\"aws_access_key_id = "+reviewKey1+"\"\r\n", false, bomLE)
	repo := t.TempDir()
	mustGitT(t, repo, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(repo, "ci.reg"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	mustGitT(t, repo, "add", "ci.reg")
	for _, tt := range []struct {
		name string
		scan func(*Stats) ([]Finding, error)
	}{
		{"dir", func(st *Stats) ([]Finding, error) { return s.ScanDir(context.Background(), repo, st) }},
		{"staged", func(st *Stats) ([]Finding, error) { return s.ScanStaged(context.Background(), repo, GitOptions{}, st) }},
		{"git", func(st *Stats) ([]Finding, error) {
			mustGitT(t, repo, "commit", "-q", "-m", "add reg")
			return s.ScanGit(context.Background(), repo, GitOptions{}, st)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &Stats{}
			fs, err := tt.scan(st)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 1 || fs[0].Path != "ci.reg" || fs[0].Line != 4 {
				t.Fatalf("got %v; want one finding at ci.reg:4", fs)
			}
			if got := st.Skipped.Load(); got != 0 {
				t.Errorf("got %d skipped; want 0", got)
			}
		})
	}
}

// git diff shows no hunks for a file it thinks binary (UTF-16 among them):
// such a staged file is scanned whole.
func TestParseStagedDiffBinary(t *testing.T) {
	const id = "20b5be91886d0b6f26dc98a225c0dac05fe2c86e"
	for _, tt := range []struct {
		name, line, want string
	}{
		{"new", "Binary files /dev/null and b/ci.reg differ", "ci.reg"},
		{"modified", "Binary files a/ci.reg and b/ci.reg differ", "ci.reg"},
		{"spaces and separator", "Binary files a/x and b/y and b/x and b/y differ", "x and b/y"},
		{"new spaces and separator", "Binary files /dev/null and b/x and b/y differ", "x and b/y"},
		{"quoted", `Binary files "a/tab\tq" and "b/tab\tq" differ`, "tab\tq"},
		{"new quoted", `Binary files /dev/null and "b/new\nline" differ`, "new\nline"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			diff := "diff --git a/x b/x\nindex 0000000000000000000000000000000000000000.." + id + "\n" + tt.line + "\n"
			added, order, blobs := parseStagedDiff([]byte(diff))
			if len(order) != 1 || order[0] != tt.want {
				t.Fatalf("got paths %q; want [%q]", order, tt.want)
			}
			if added[tt.want] != nil || blobs[tt.want] != id {
				t.Errorf("got lines %v, blob %q; want all lines (nil), blob %s", added[tt.want], blobs[tt.want], id)
			}
		})
	}
}

// The decoded text is bounded like a file (MaxFileSize bytes).
func TestAppendUTF16Limit(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		limit    int
		want     string
	}{
		{"ascii fits", "abc", 3, "abc"},
		{"ascii cut", "abcdef", 4, "abcd"},
		{"no rune split", "a€b", 3, "a"}, // € is 3 bytes of UTF-8
		{"three-byte rune fits", "a€b", 4, "a€"},
		{"pair kept whole", "a\U0001F511b", 4, "a"},
		{"pair fits", "a\U0001F511b", 5, "a\U0001F511"},
		{"zero limit", "abc", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendUTF16(nil, utf16Bytes(tt.in, false, ""), false, tt.limit)); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name string
		in   []byte
		want string
	}{
		{"lone high surrogate at end", []byte{'a', 0, 0x3d, 0xd8}, "a\uFFFD"},
		{"high surrogate then letter", []byte{0x3d, 0xd8, 'b', 0}, "\uFFFDb"},
		{"lone low surrogate", []byte{0x11, 0xdd, 'b', 0}, "\uFFFDb"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendUTF16(nil, tt.in, false, 100)); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
	// Through Scan: a key past MaxFileSize bytes of decoded text is not read.
	pad := strings.Repeat("€", 400) + "\n" // 1201 bytes of UTF-8 from 802 of UTF-16
	for _, tt := range []struct {
		name  string
		max   int64
		found bool
	}{{"within", 4096, true}, {"beyond", 1230, false}} {
		t.Run(tt.name, func(t *testing.T) {
			s := MustTestScanner(t, Options{MaxFileSize: tt.max})
			fs := s.ScanBytes("a.ps1", utf16Bytes(pad+"aws_access_key_id = "+reviewKey1+"\n", false, bomLE))
			if got := len(fs) == 1; got != tt.found {
				t.Errorf("got %v; want found %v", fs, tt.found)
			}
		})
	}
}

// In --staged mode, a file git diffs as binary has no added lines to go by:
// it is scanned whole, and the scanner decides whether it is text.
func TestStagedBinaryDiff(t *testing.T) {
	s := MustTestScanner(t, Options{})
	line := "aws_access_key_id = " + reviewKey1 + "\r\n"
	for _, tt := range []struct {
		name   string
		file   string
		before []byte // committed first when set
		after  []byte
		want   []string
	}{
		{"UTF-16 added", "a.ps1", nil, utf16Bytes("x\r\n"+line, false, bomLE), []string{"a.ps1:2:aws-access-key-id"}},
		// Whole: the old key is reported again with the change.
		{"UTF-16 modified", "a.ps1", utf16Bytes(line, true, bomBE), utf16Bytes(line+"y\r\n", true, bomBE),
			[]string{"a.ps1:1:aws-access-key-id"}},
		{"binary", "a.bin", nil, []byte("\x00" + line), nil},
		{"key store", "ci.p12", nil, []byte("0\x82\x00\x01"), []string{"ci.p12:1:pkcs12-file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			mustGitT(t, repo, "init", "-q", "-b", "main")
			if err := os.WriteFile(filepath.Join(repo, "README"), []byte("r\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.before != nil {
				if err := os.WriteFile(filepath.Join(repo, tt.file), tt.before, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			mustGitT(t, repo, "add", ".")
			mustGitT(t, repo, "commit", "-q", "-m", "one")
			if err := os.WriteFile(filepath.Join(repo, tt.file), tt.after, 0o644); err != nil {
				t.Fatal(err)
			}
			mustGitT(t, repo, "add", ".")
			fs, err := s.ScanStaged(context.Background(), repo, GitOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Path+":"+strconv.Itoa(f.Line)+":"+f.RuleID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}
