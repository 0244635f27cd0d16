package scan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
)

// byte classes for finding encoded runs in one pass.
const (
	clB64 = 1 << iota // base64 standard or URL alphabet, without padding
	clHex
	clUpper
	clLower
	clDigit
)

var classes = func() (t [256]uint8) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] |= clB64 | clUpper
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= clB64 | clLower
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= clB64 | clDigit | clHex
	}
	for _, c := range "abcdefABCDEF" {
		t[c] |= clHex
	}
	t['+'] |= clB64
	t['/'] |= clB64
	t['-'] |= clB64
	t['_'] |= clB64
	return t
}()

// decodeLayer finds base64, hex and percent-encoded runs in data, decodes the
// printable ones and scans them one level deeper; findings point at the run.
func (w *Worker) decodeLayer(path string, data []byte, depth int, org *origin) {
	n := len(data)
	for i := 0; i < n; {
		if classes[data[i]]&clB64 == 0 {
			i++
			continue
		}
		// The run's end; its character mix is checked only for long runs,
		// which are rare, to keep this per-byte loop minimal.
		j := i + 1
		for _, c := range data[j:] {
			if classes[c]&clB64 == 0 {
				break
			}
			j++
		}
		end := j
		for end < n && end-j < 2 && data[end] == '=' {
			end++
		}
		if run := j - i; run >= minEncodedRun && run <= maxEncodedRun {
			var seen uint8
			for _, c := range data[i:j] {
				seen |= classes[c]
			}
			switch {
			case run%2 == 0 && run >= 32 && allHex(data[i:j]):
				w.tryDecoded(path, data, i, j, depth, org, "hex")
			case seen&clUpper != 0 && seen&clLower != 0 && seen&clDigit != 0:
				w.tryDecoded(path, data, i, end, depth, org, "base64")
			}
		}
		i = end + 1
	}
	// Percent-encoding: runs of non-space bytes holding at least two %XX.
	for off := 0; off < n; {
		k := bytes.IndexByte(data[off:], '%')
		if k < 0 {
			break
		}
		p := off + k
		a := p
		for a > 0 && !isSpaceOrQuote(data[a-1]) && p-a < maxEncodedRun {
			a--
		}
		b := p
		escapes := 0
		for b < n && !isSpaceOrQuote(data[b]) && b-a < maxEncodedRun {
			if data[b] == '%' && b+2 < n && isHex(data[b+1]) && isHex(data[b+2]) {
				escapes++
			}
			b++
		}
		if escapes >= 2 && b-a >= minEncodedRun/2 {
			w.tryDecoded(path, data, a, b, depth, org, "percent")
		}
		off = b + 1
	}
}

func isSpaceOrQuote(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '`'
}

func allHex(b []byte) bool {
	for _, c := range b {
		if !isHex(c) {
			return false
		}
	}
	return true
}

func (w *Worker) tryDecoded(path string, data []byte, a, b, depth int, org *origin, kind string) {
	if w.decoded+(b-a) > maxDecodedPerBuffer {
		return
	}
	var out []byte
	switch kind {
	case "hex":
		out = make([]byte, (b-a)/2)
		if _, err := hex.Decode(out, data[a:b]); err != nil {
			return
		}
	case "base64":
		out = decodeBase64(data[a:b])
		if out == nil {
			return
		}
	case "percent":
		out = decodePercent(data[a:b])
	}
	w.decoded += b - a
	if len(out) < 8 || !mostlyPrintable(out) {
		return
	}
	var o origin
	if org != nil {
		o = *org
		o.chain = org.chain + ">" + kind
	} else {
		o.line, o.col = w.lineCol(data, a)
		o.endLine, o.endCol = w.lineCol(data, b)
		o.endCol--
		o.chain = kind
	}
	// The nested layer moves the line cursor to its own buffer.
	cd, co, cl, cs := w.lcData, w.lcOff, w.lcLine, w.lcLineStart
	w.scanLayer(path, out, depth+1, &o)
	w.lcData, w.lcOff, w.lcLine, w.lcLineStart = cd, co, cl, cs
}

// decodeBase64 tries the standard and URL alphabets, padded or not.
func decodeBase64(src []byte) []byte {
	trimmed := bytes.TrimRight(src, "=")
	encs := []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding}
	for _, enc := range encs {
		out := make([]byte, enc.DecodedLen(len(trimmed)))
		if n, err := enc.Decode(out, trimmed); err == nil {
			return out[:n]
		}
	}
	return nil
}

func decodePercent(src []byte) []byte {
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		if src[i] == '%' && i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]) {
			out = append(out, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 2
			continue
		}
		out = append(out, src[i])
	}
	return out
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// mostlyPrintable reports whether at least 95% of b is printable ASCII or
// common whitespace: decoded text worth scanning, not random bytes.
func mostlyPrintable(b []byte) bool {
	bad := 0
	for _, c := range b {
		if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c >= 0x7f {
			bad++
		}
	}
	return bad*20 <= len(b)
}
