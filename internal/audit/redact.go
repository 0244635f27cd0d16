package audit

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tokenward/tokenward"
)

// redactMinRun is how many base62 characters after a token prefix make a
// run look like a token. Real tokens have 49; a mistyped or truncated one
// is still a credential to keep out of the trail.
const redactMinRun = 20

// tokenPrefixes are the prefixes of tokenward tokens.
var tokenPrefixes = []string{tokenward.PrefixAdmin, tokenward.PrefixService, tokenward.PrefixJIT}

// RedactTokens replaces anything in s that looks like a tokenward token (a
// token prefix followed by 20 or more base62 characters) with the prefix
// and "[redacted]". Requests can carry a token where an id or name belongs
// (`token show <token>` by mistake), and the request path and error
// messages end up in the entry.
func RedactTokens(s string) string {
	if len(s) < len(tokenward.PrefixAdmin)+redactMinRun || !strings.Contains(s, "tw") {
		return s
	}
	// Mark the base62 run after every prefix, also a prefix inside an
	// earlier run (two tokens pasted together).
	var cut [][2]int
	for _, p := range tokenPrefixes {
		for off := 0; ; {
			k := strings.Index(s[off:], p)
			if k < 0 {
				break
			}
			i := off + k + len(p)
			j := i
			for j < len(s) && isBase62(s[j]) {
				j++
			}
			if j-i >= redactMinRun {
				cut = append(cut, [2]int{i, j})
			}
			off = i
		}
	}
	if len(cut) == 0 {
		return s
	}
	slices.SortFunc(cut, func(a, b [2]int) int { return a[0] - b[0] })
	var b strings.Builder
	last := 0
	for _, c := range cut {
		if c[0] < last { // starts inside a run already cut
			last = max(last, c[1])
			continue
		}
		b.WriteString(s[last:c[0]])
		b.WriteString("[redacted]")
		last = c[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// redactEntry applies RedactTokens to every text field of e, and makes
// every string valid UTF-8 without NUL (each invalid byte run, and each
// NUL, becomes U+FFFD): the hash must be computed over what every store
// and the JSON of exports and sinks keep. JSON replaces invalid bytes (a
// User-Agent's obs-text, or one cut mid-rune), so the entry read back would
// no longer match; PostgreSQL's text refuses NUL (a request path's %00,
// which even a refused request's entry names), which failed its whole
// group commit, and so every request in it.
func redactEntry(e *tokenward.AuditEntry) {
	for _, f := range []*string{&e.RequestID, &e.TokenID, &e.TokenName, &e.Action, &e.Resource, &e.Reason, &e.SourceIP, &e.UserAgent} {
		*f = validUTF8(RedactTokens(*f))
	}
	e.CI, e.Meta = redactMap(e.CI), redactMap(e.Meta)
}

// validUTF8 returns s with every run of invalid UTF-8, and every NUL,
// replaced by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// redactMap returns m, or a redacted copy when a key or value needs it: the
// map may belong to the caller (a cached token's CI facts).
func redactMap(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if rk, rv := validUTF8(k), validUTF8(RedactTokens(v)); rk != k || rv != v {
			if out == nil {
				out = make(map[string]string, len(m))
				for k2, v2 := range m {
					out[k2] = v2
				}
			}
			delete(out, k)
			out[rk] = rv
		}
	}
	if out == nil {
		return m
	}
	return out
}
