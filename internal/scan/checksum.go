package scan

import (
	"hash/crc32"
	"strings"

	"github.com/tokenward/tokenward"
)

// checksumValidators maps a rule's `checksum` name to its validator. A
// validator sees the secret (or the whole match when the rule has no secret
// group) and reports whether its embedded checksum holds.
var checksumValidators = map[string]func(string) bool{
	ChecksumTokenward: tokenward.TokenChecksumValid,
	ChecksumGitHub:    GitHubChecksumValid,
	ChecksumNPM:       NPMChecksumValid,
}

const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// GitHubChecksumValid reports whether s is a GitHub ghp_/gho_/ghu_/ghs_/ghr_
// token whose last 6 characters are the base62 CRC32 (IEEE) of the 30
// random characters before them, as GitHub described in "Behind GitHub's new
// authentication token formats" (2021).
func GitHubChecksumValid(s string) bool {
	if len(s) != 40 {
		return false
	}
	switch s[:4] {
	case "ghp_", "gho_", "ghu_", "ghs_", "ghr_":
	default:
		return false
	}
	return base62CRCValid(s[4:34], s[34:])
}

// NPMChecksumValid reports whether s is an npm_ access token (npm_ + 30
// random + 6 checksum characters, the same scheme as GitHub's).
func NPMChecksumValid(s string) bool {
	if len(s) != 40 || !strings.HasPrefix(s, "npm_") {
		return false
	}
	return base62CRCValid(s[4:34], s[34:])
}

func base62CRCValid(random, sum string) bool {
	var v uint64
	for i := 0; i < len(random); i++ {
		if strings.IndexByte(b62, random[i]) < 0 {
			return false
		}
	}
	for i := 0; i < len(sum); i++ {
		d := strings.IndexByte(b62, sum[i])
		if d < 0 {
			return false
		}
		v = v*62 + uint64(d)
	}
	return v == uint64(crc32.ChecksumIEEE([]byte(random)))
}

// base62CRC returns the 6-character base62 CRC32 of s (for tests and the
// benchmark's generated tokens).
func base62CRC(s string) string {
	v := uint64(crc32.ChecksumIEEE([]byte(s)))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = b62[v%62]
		v /= 62
	}
	return string(out)
}
