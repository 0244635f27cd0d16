package scan

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
)

// shannonEntropy returns the entropy of s in bits per byte.
func shannonEntropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// placeholderWords mark documentation values, templates and fixtures.
var placeholderWords = []string{
	"example", "xxxx", "placeholder", "changeme", "change_me", "your_", "your-", "yourkey",
	"dummy", "redacted", "****", "<", ">", "${", "{{", "$(", "%(", "sample", "insert",
	"fake", "todo", "foobar", "replace", "process.env", "os.environ", "getenv", "secretkeyref",
	"...", "0000000000", "1234567890", "abcdefghij", "qwerty",
}

// isPlaceholder reports whether secret looks like a placeholder, a template
// variable or a fixture value rather than a credential.
func isPlaceholder(secret string) bool {
	if len(secret) < 4 {
		return true
	}
	lower := strings.ToLower(secret)
	for _, w := range placeholderWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	if secret[0] == '$' || secret[0] == '%' {
		return true // $VAR, %VAR%
	}
	// All the same character, or nearly so (aaaaaaaa, 0000-0000).
	var seen [256]bool
	distinct := 0
	for i := 0; i < len(secret); i++ {
		if !seen[secret[i]] {
			seen[secret[i]] = true
			distinct++
		}
	}
	return distinct <= 3
}

// isUUID reports whether s is exactly a canonical UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

// isHexHash reports whether s is a bare hex digest (MD5, SHA-1, SHA-256...),
// the usual content of commit ids, checksums and lock files.
func isHexHash(s string) bool {
	switch len(s) {
	case 32, 40, 56, 64, 96, 128:
	default:
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

var lockFiles = map[string]bool{
	"package-lock.json": true, "yarn.lock": true, "pnpm-lock.yaml": true, "go.sum": true,
	"Cargo.lock": true, "poetry.lock": true, "Gemfile.lock": true, "composer.lock": true,
	"Pipfile.lock": true, "bun.lock": true, "npm-shrinkwrap.json": true, "packages.lock.json": true,
	"flake.lock": true, "mix.lock": true, "pubspec.lock": true, "Podfile.lock": true, "uv.lock": true,
}

func isLockFile(path string) bool { return lockFiles[filepath.Base(path)] }

var allowMarkers = [][]byte{[]byte("tokenward:allow"), []byte("gitleaks:allow")}

// hasAllowMarker reports whether line carries an inline allow comment.
func hasAllowMarker(line []byte) bool {
	for _, m := range allowMarkers {
		if bytes.Contains(line, m) {
			return true
		}
	}
	return false
}

// Redact returns what may be shown of a secret: its first 4 characters (fewer
// for short secrets, so at most a quarter is shown) and a mask.
func Redact(secret string) string {
	n := 4
	if q := len(secret) / 4; q < n {
		n = q
	}
	return secret[:n] + "****"
}
