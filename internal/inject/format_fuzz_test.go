package inject

import (
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokenward/tokenward"
)

// FuzzEncode starts from values rather than files: whatever Encode writes,
// Decode reads back to the same values in every format; Encode refuses
// only what a format cannot carry (a bad name, a NUL byte, non-UTF-8 in
// JSON, GitHub and GitLab, a line break or edge blanks for GitLab, an
// oversized GitLab artifact, a dotenv value ending in a backslash that
// cannot go unquoted), with an error that never holds a value; and
// the GitHub masks hold, escaped, every non-blank line (ended by \n or \r)
// of every value and nothing
// that could start another workflow command.
func FuzzEncode(f *testing.F) {
	for i := range Formats {
		f.Add(uint8(i), "A", "it's 'quoted'", "B", "line1\nline2\r\n")
		f.Add(uint8(i), "DOLLAR", "$HOME ${PATH} $(id) `id`", "EMPTY", "")
		f.Add(uint8(i), "X", "ghadelimiter_00\nEOF\n::add-mask::x", "Y", "%0A%25 \\n \"")
		f.Add(uint8(i), "X", "nul\x00byte", "Y", "\xff\xfe")
		f.Add(uint8(i), "1BAD", "v", "OK", "  padded  ")
	}
	f.Fuzz(func(t *testing.T, which uint8, n1, v1, n2, v2 string) {
		fm := Formats[int(which)%len(Formats)]
		values := map[string]string{n1: v1, n2: v2}
		data, err := Encode(fm, values)
		if err != nil {
			if tokenward.ErrorCode(err) != tokenward.EINVALID && tokenward.ErrorCode(err) != tokenward.ETOOLARGE {
				t.Fatalf("Encode(%s, %q): got %v; want EINVALID or ETOOLARGE", fm, values, err)
			}
			for n, v := range values {
				if len(v) >= 6 && !strings.Contains(n1+n2, v) && strings.Contains(err.Error(), v) {
					t.Fatalf("Encode(%s): error %q holds the value of %s", fm, err, n)
				}
			}
			if allCarried(fm, values) {
				t.Fatalf("Encode(%s, %q) refused values the format carries: %v", fm, values, err)
			}
			return
		}
		back, err := Decode(fm, data)
		if err != nil {
			t.Fatalf("Decode(%s) of our own encoding %q: %v", fm, data, err)
		}
		if !maps.Equal(back, values) {
			t.Fatalf("Decode(Encode(%s, %q)) = %q", fm, values, back)
		}
		if fm != FormatGitHub {
			return
		}
		_, masks, err := EncodeGitHub(values)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, v := range values {
			for _, l := range logLines(v) {
				if strings.TrimSpace(l) != "" {
					want[l] = true
				}
			}
		}
		got := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSuffix(string(masks), "\n"), "\n") {
			if l == "" && len(want) == 0 {
				continue
			}
			data, ok := strings.CutPrefix(l, "::add-mask::")
			if !ok || strings.ContainsAny(data, "\r\n") {
				t.Fatalf("mask line %q is not one ::add-mask:: command", l)
			}
			got[strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%").Replace(data)] = true
		}
		if !maps.Equal(got, want) {
			t.Fatalf("masks %q: got lines %v; want %v", masks, got, want)
		}
	})
}

// allCarried reports whether format fm can carry every value as given.
func allCarried(fm Format, values map[string]string) bool {
	size := 0
	for n, v := range values {
		if tokenward.ValidateSecretName(n) != nil || strings.IndexByte(v, 0) >= 0 {
			return false
		}
		switch fm {
		case FormatJSON:
			if !utf8.ValidString(v) {
				return false
			}
		case FormatGitHub:
			if !utf8.ValidString(v) {
				return false
			}
		case FormatDotenv:
			if _, ok := dotenvQuote(v); !ok {
				return false
			}
		case FormatGitLab:
			if !utf8.ValidString(v) || strings.ContainsAny(v, "\r\n") || strings.TrimSpace(v) != v {
				return false
			}
			size += len(n) + len(v) + strings.Count(v, "$") + 2 // $ is written $$
		}
	}
	return size < GitLabMaxDotenvSize
}
