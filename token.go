package tokenward

import (
	"crypto/rand"
	"crypto/sha256"
	"hash/crc32"
	"io"
	"math/big"
	"time"
)

// TokenKind is what a token is for; its prefix says so in the token itself.
type TokenKind string

const (
	TokenAdmin   TokenKind = "admin"   // twa_: people and admins
	TokenService TokenKind = "service" // tws_: long-lived machine tokens
	TokenJIT     TokenKind = "jit"     // twj_: minted from a CI identity token
)

// Token prefixes by kind.
const (
	PrefixAdmin   = "twa_"
	PrefixService = "tws_"
	PrefixJIT     = "twj_"
)

const (
	tokenRandomLen   = 43 // 32 random bytes in base62, zero-padded
	tokenChecksumLen = 6  // CRC32 (IEEE) of prefix+random, base62, zero-padded
	// TokenLen is the length of every tokenward token.
	TokenLen = 4 + tokenRandomLen + tokenChecksumLen
)

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Prefix returns the token prefix of kind k, or "" for an unknown kind.
func (k TokenKind) Prefix() string {
	switch k {
	case TokenAdmin:
		return PrefixAdmin
	case TokenService:
		return PrefixService
	case TokenJIT:
		return PrefixJIT
	}
	return ""
}

// Valid reports whether k is a known kind.
func (k TokenKind) Valid() bool { return k.Prefix() != "" }

// NewTokenSecret returns a new token of kind k read from crypto/rand.
func NewTokenSecret(k TokenKind) (string, error) { return newTokenSecret(k, rand.Reader) }

func newTokenSecret(k TokenKind, r io.Reader) (string, error) {
	prefix := k.Prefix()
	if prefix == "" {
		return "", Errorf(EINVALID, "unknown token kind %q", Printable(string(k)))
	}
	var raw [32]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", err
	}
	body := prefix + base62(new(big.Int).SetBytes(raw[:]), tokenRandomLen)
	return body + tokenChecksum(body), nil
}

func tokenChecksum(body string) string {
	sum := checksumDigits(body)
	return string(sum[:])
}

// checksumDigits is tokenChecksum in an array: ParseToken compares it with
// no allocation (through math/big, it was two per authenticated request).
func checksumDigits(body string) [tokenChecksumLen]byte {
	return base62Uint32(crc32.ChecksumIEEE([]byte(body)))
}

// base62Uint32 is base62 of n in tokenChecksumLen digits: 62^6 > 2^32, so
// every n fits.
func base62Uint32(n uint32) [tokenChecksumLen]byte {
	var out [tokenChecksumLen]byte
	for i := tokenChecksumLen - 1; i >= 0; i-- {
		out[i] = base62Alphabet[n%62]
		n /= 62
	}
	return out
}

// base62 encodes n in exactly width digits (n must fit).
func base62(n *big.Int, width int) string {
	out := make([]byte, width)
	b62 := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, b62, mod)
		out[i] = base62Alphabet[mod.Int64()]
	}
	return string(out)
}

// ParseToken checks the form of a tokenward token (prefix, length, alphabet
// and checksum) and returns its kind. It never echoes the token in its error.
func ParseToken(s string) (TokenKind, error) {
	if len(s) != TokenLen {
		return "", Errorf(EUNAUTHORIZED, "malformed token: want %d characters, got %d", TokenLen, len(s))
	}
	var kind TokenKind
	switch s[:4] {
	case PrefixAdmin:
		kind = TokenAdmin
	case PrefixService:
		kind = TokenService
	case PrefixJIT:
		kind = TokenJIT
	default:
		return "", Errorf(EUNAUTHORIZED, "malformed token: unknown prefix (want twa_, tws_ or twj_)")
	}
	for i := 4; i < len(s); i++ {
		if !isBase62(s[i]) {
			return "", Errorf(EUNAUTHORIZED, "malformed token: character %d is not base62", i+1)
		}
	}
	body := s[:len(s)-tokenChecksumLen]
	if sum := checksumDigits(body); string(sum[:]) != s[len(body):] {
		return "", Errorf(EUNAUTHORIZED, "malformed token: checksum does not match (mistyped or truncated?)")
	}
	return kind, nil
}

// TokenChecksumValid reports whether s has the form and checksum of a
// tokenward token. Scanners use it to report leaks with no false positives.
func TokenChecksumValid(s string) bool {
	_, err := ParseToken(s)
	return err == nil
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// HashToken returns the SHA-256 of a token: the only form a store keeps.
func HashToken(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// Token is an access token's record. It never holds the token itself.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Kind      TokenKind `json:"kind"`
	Owner     string    `json:"owner,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"` // id of the token that made it, "" for init
	Grants    Grants    `json:"grants"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: does not expire
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// LastUsedAt and LastUsedIP are updated lazily (batched) by the server.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	LastUsedIP string    `json:"last_used_ip,omitempty"`
	// CI holds the facts of the CI job a just-in-time token was minted for
	// (issuer, repository, ref, run id, workflow, actor, sha).
	CI map[string]string `json:"ci,omitempty"`
}

// Active reports whether t may be used at now.
func (t *Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// MaxTokenNameLen bounds token names.
const MaxTokenNameLen = 128

// ValidateTokenName checks a token's name: 1-128 printable characters of
// [A-Za-z0-9._@:-], not starting with "tok_" (the id prefix), so a name
// never reads as an id, and not "self" (a route of its own).
func ValidateTokenName(s string) error {
	if s == "" {
		return Errorf(EINVALID, "token name is empty")
	}
	if len(s) > MaxTokenNameLen {
		return Errorf(EINVALID, "token name is longer than %d characters", MaxTokenNameLen)
	}
	if len(s) >= 4 && s[:4] == TokenIDPrefix {
		return Errorf(EINVALID, "token name may not start with %q", TokenIDPrefix)
	}
	if s == "self" {
		// /v1/tokens/self is the caller's own token, not the one named so.
		return Errorf(EINVALID, "token name %q is reserved (/v1/tokens/self is the caller's own token)", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isBase62(c) && c != '-' && c != '_' && c != '.' && c != '@' && c != ':' {
			return Errorf(EINVALID, "token name %q has a character outside [A-Za-z0-9._@:-]", Printable(s))
		}
	}
	return nil
}

// ValidateTokenOwner checks a token's owner (free text, may be empty):
// at most MaxOwnerLen bytes, and text PostgreSQL's text holds, so SQLite is
// given nothing PostgreSQL would refuse (as ValidateSecretMeta does for a
// secret's owner).
func ValidateTokenOwner(s string) error {
	if len(s) > MaxOwnerLen {
		return Errorf(EINVALID, "owner is longer than %d characters", MaxOwnerLen)
	}
	if p := textProblem(s); p != "" {
		return Errorf(EINVALID, "owner %s", p)
	}
	return nil
}

// TokenIDPrefix starts every token id.
const TokenIDPrefix = "tok_"

// NewTokenID returns a random token id: "tok_" and 16 base62 characters.
func NewTokenID() string {
	var raw [12]byte
	if _, err := io.ReadFull(rand.Reader, raw[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return TokenIDPrefix + base62(new(big.Int).SetBytes(raw[:]), 17)
}
