package tokenward

import (
	"bytes"
	"hash/crc32"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

func TestTokenFormat(t *testing.T) {
	for _, k := range []TokenKind{TokenAdmin, TokenService, TokenJIT} {
		s, err := NewTokenSecret(k)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != TokenLen || !strings.HasPrefix(s, k.Prefix()) {
			t.Fatalf("got %d chars with prefix %q; want %d with %q", len(s), s[:4], TokenLen, k.Prefix())
		}
		got, err := ParseToken(s)
		if err != nil || got != k {
			t.Fatalf("ParseToken: got %q, %v; want %q", got, err, k)
		}
	}
	// A deterministic vector: all-zero random bytes.
	s, err := newTokenSecret(TokenService, bytes.NewReader(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "tws_" + strings.Repeat("0", 43) + tokenChecksum("tws_"+strings.Repeat("0", 43)); s != want {
		t.Fatalf("got %s; want %s", s, want)
	}
	if _, err := NewTokenSecret("bogus"); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

func TestParseTokenRejects(t *testing.T) {
	good, _ := NewTokenSecret(TokenAdmin)
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "want 53 characters"},
		{"short", good[:52], "want 53 characters"},
		{"long", good + "A", "want 53 characters"},
		{"prefix", "twx_" + good[4:], "unknown prefix"},
		{"alphabet", good[:10] + "-" + good[11:], "not base62"},
		{"body typo", flip(20), "checksum"},
		{"checksum typo", flip(50), "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseToken(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) || ErrorCode(err) != EUNAUTHORIZED {
				t.Fatalf("got %v; want unauthorized containing %q", err, tc.want)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), tc.in[4:12]) {
				t.Fatalf("error %q echoes the token", err)
			}
		})
	}
}

func FuzzParseToken(f *testing.F) {
	good, _ := NewTokenSecret(TokenJIT)
	f.Add(good)
	f.Add("twa_")
	f.Add(strings.Repeat("A", TokenLen))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseToken(s)
		if err != nil {
			if len(s) >= 12 && strings.Contains(err.Error(), s) {
				t.Fatal("error echoes the input")
			}
			return
		}
		if !k.Valid() || !strings.HasPrefix(s, k.Prefix()) || len(s) != TokenLen || !TokenChecksumValid(s) {
			t.Fatalf("accepted %q as %q", s, k)
		}
	})
}

func TestTokenName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"deploy-bot", true}, {"ci@acme:prod.v2_x", true}, {"", false}, {"has space", false},
		{"tok_lookalike", false}, {strings.Repeat("a", 129), false}, {"naïve", false},
		{"self", false}, {"Self", true}, {"myself", true}, // /v1/tokens/self is the caller's own
	} {
		if err := ValidateTokenName(tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidateTokenName(%q): got %v; want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// TestTokenOwner: a token's owner is free text that both stores hold
// alike: a NUL byte or bytes that are not UTF-8 are refused (PostgreSQL's
// text refuses them, and SQLite stored them).
func TestTokenOwner(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"", true}, {"team-payments", true}, {"Zoë Müller <zoe@example.com>", true}, {strings.Repeat("a", MaxOwnerLen), true},
		{strings.Repeat("a", MaxOwnerLen+1), false}, {"a\x00b", false}, {"\xff\xfe", false},
	} {
		if err := ValidateTokenOwner(tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidateTokenOwner(%q): got %v; want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// TestChecksumDigits: the checksum written with integer arithmetic is
// base62 of the CRC through math/big, as every issued token has it, for
// the extremes of a uint32 and many bodies.
func TestChecksumDigits(t *testing.T) {
	for _, n := range []uint32{0, 1, 61, 62, 62*62 - 1, 1 << 31, 1<<32 - 1} {
		want := base62(new(big.Int).SetUint64(uint64(n)), tokenChecksumLen)
		if got := base62Uint32(n); string(got[:]) != want {
			t.Errorf("%d: got %s; want %s", n, base62Uint32(n), want)
		}
	}
	for i := range 5000 {
		body := "tws_" + strconv.Itoa(i*7919) + strings.Repeat("x", i%43)
		want := base62(new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(body)))), tokenChecksumLen)
		if got := tokenChecksum(body); got != want {
			t.Fatalf("%q: got %s; want %s", body, got, want)
		}
	}
}

// TestAuthenticationPathAllocations: a bearer token is parsed on every
// request, and ErrorCode asked of nil errors many times per request.
func TestAuthenticationPathAllocations(t *testing.T) {
	tok, err := NewTokenSecret(TokenService)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"ParseToken", 1, func() { ParseToken(tok) }}, // []byte(body) for crc32
		{"ErrorCode(nil)", 0, func() { ErrorCode(nil) }},
		{"ErrorCode(*Error)", 0, func() { ErrorCode(errNotFoundForTest) }},
		{"ErrorMessage(nil)", 0, func() { ErrorMessage(nil) }},
	} {
		if got := testing.AllocsPerRun(100, tc.f); got > tc.max {
			t.Errorf("%s: %.0f allocations; want at most %.0f", tc.name, got, tc.max)
		}
	}
}

var errNotFoundForTest error = Errorf(ENOTFOUND, "x")
