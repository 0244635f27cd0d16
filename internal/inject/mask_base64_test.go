package inject

import (
	"encoding/base64"
	"fmt"
	"testing"
)

// TestRedactorBase64Newline: a value base64-encoded with a trailing newline
// (printf '%s\n' "$SECRET" | base64) or \r\n, or without one, alone or inside
// a longer stream at each byte alignment, with each alphabet and padding,
// split into writes of every size. Every base64 character that carries bits
// of the value is masked, except one that also carries bits of an unknown
// neighbour: the first character when the value does not start a 3-byte
// group (at most 4 bits of its first byte), and the last when the value
// (without a newline) is followed by more data (at most 4 bits of its last
// byte). Characters that encode only the newline and the neighbours stay.
func TestRedactorBase64Newline(t *testing.T) {
	encodings := []struct {
		name string
		enc  *base64.Encoding
	}{
		{"std", base64.StdEncoding},
		{"url", base64.URLEncoding},
		{"rawstd", base64.RawStdEncoding},
		{"rawurl", base64.RawURLEncoding},
	}
	// 30, 31 and 32 bytes: every length mod 3. The ?, > and ~ bytes make
	// the std and URL alphabets differ.
	values := []string{
		"k8s?tok>en~0123456789abcdefghi",
		"k8s?tok>en~0123456789abcdefghij",
		"k8s?tok>en~0123456789abcdefghijk",
	}
	for _, v := range values {
		m := NewMasker(map[string]string{"K": v}, 0)
		for _, e := range encodings {
			for _, nl := range []string{"", "\n", "\r\n"} {
				for _, prefix := range []string{"", "TOKEN=", "TOKEN:=", "TOKEN :="} {
					// after starts with a byte of nonzero high bits: one
					// below 0x40 would make the mixed character equal the
					// zero-filled one that ends an encoding, and that is
					// masked too (harmless, but not what want spells).
					for _, after := range []string{"", "End of the file\n"} {
						plain := prefix + v + nl + after
						enc := e.enc.EncodeToString([]byte(plain))
						in := enc + "\n" // base64(1) ends its output with a newline
						// Characters [0, from) carry no bit of the value,
						// nor does a first one shared with the prefix.
						from := (8*len(prefix) + 5) / 6
						to := len(enc)
						if after != "" {
							to = 8 * (len(prefix) + len(v) + len(nl)) / 6
						}
						want := enc[:from] + Mask + enc[to:] + "\n"
						name := fmt.Sprintf("len=%d/%s/nl=%q/prefix=%d/after=%t", len(v), e.name, nl, len(prefix), after != "")
						for _, chunk := range []int{0, 1, 2, 3, 5} {
							if got := redact(t, m, in, chunk); got != want {
								t.Errorf("%s/chunk=%d: %q: got %q; want %q", name, chunk, in, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestRedactorBase64NewlineResidue is the report of issue 13 in its own
// words: the value piped through base64 with echo's newline leaves nothing.
func TestRedactorBase64NewlineResidue(t *testing.T) {
	const secret = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
	m := NewMasker(map[string]string{"GITHUB_TOKEN": secret}, 0)
	in := "token: " + base64.StdEncoding.EncodeToString([]byte(secret+"\n")) + "\n"
	if got, want := redact(t, m, in), "token: ***\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
