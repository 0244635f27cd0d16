// Package jsonw writes the JSON of fixed shapes without reflection, byte for
// byte as encoding/json does with HTML escaping off (an Encoder with
// SetEscapeHTML(false)). It serves the hottest paths, a secret read, an
// environment fetch and each audit row's attribute maps, where encoding/json's
// reflection and map sorting were a measurable part of a request.
package jsonw

import (
	"bytes"
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// Marshal is what AppendString and AppendStringMap match: encoding/json's
// encoding of v with HTML escaping off, newline-terminated as an Encoder
// writes it. It is the fall back and the reference for hand-written
// encoders.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string exactly as encoding/json
// does with HTML escaping off: " and \ escaped, \b \f \n \r \t short,
// other control characters as \u00XX, invalid UTF-8 as \ufffd, and U+2028
// and U+2029 escaped (JavaScript line terminators). s may be a []byte, so
// a secret's value is written without a string copy of it.
func AppendString[S string | []byte](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look of its own (a
		// secret's value is usually plain ASCII): a quarter of an
		// environment fetch's encoding went to this loop byte by byte.
		for i+8 <= len(s) && plain8(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plain8 reports whether the eight bytes of w are all ASCII that JSON
// takes as it is: none at or above 0x80, below 0x20, '"' or '\\'. The
// tests are the exact "has a byte less than n" and "has a zero byte" word
// tricks (Bit Twiddling Hacks), on bytes already known to be below 0x80.
func plain8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) bool { return (v-ones)&^v&highs != 0 }
	return w&highs == 0 &&
		(w-0x20*ones)&^w&highs == 0 &&
		!hasZero(w^'"'*ones) &&
		!hasZero(w^'\\'*ones)
}

func decodeRune[S string | []byte](s S) (rune, int) {
	if x, ok := any(s).(string); ok {
		return utf8.DecodeRuneInString(x)
	}
	return utf8.DecodeRune(any(s).([]byte))
}

// AppendStringMap appends m as a JSON object with its keys sorted, as
// encoding/json writes a map[string]string; a nil map is null.
func AppendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, k)
		b = append(b, ':')
		b = AppendString(b, m[k])
	}
	return append(b, '}')
}
