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
	forEachLongRun(data, func(i, j int) {
		end := j
		for end < n && end-j < 2 && data[end] == '=' {
			end++
		}
		if j-i > maxEncodedRun {
			return
		}
		var seen uint8
		for _, c := range data[i:j] {
			seen |= classes[c]
		}
		switch {
		case (j-i)%2 == 0 && j-i >= 32 && allHex(data[i:j]):
			w.tryDecoded(path, data, i, j, depth, org, "hex")
		case seen&clUpper != 0 && seen&clLower != 0 && seen&clDigit != 0:
			w.tryDecoded(path, data, i, end, depth, org, "base64")
		}
	})
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

// forEachLongRun calls fn(i, j) for every maximal run data[i:j] of base64
// alphabet bytes at least minEncodedRun long, in order. Most text is made
// of short runs, so it looks only at every minEncodedRun-th byte until one
// is in the alphabet: a long run starting in [i, i+m) must cover i+m-1.
func forEachLongRun(data []byte, fn func(i, j int)) {
	const m = minEncodedRun
	n := len(data)
	for i := 0; i+m <= n; {
		k := i + m - 1
		if classes[data[k]]&clB64 == 0 {
			i = k + 1
			continue
		}
		s := k
		for s > i && classes[data[s-1]]&clB64 != 0 {
			s--
		}
		j := k + 1
		for j < n && classes[data[j]]&clB64 != 0 {
			j++
		}
		if j-s >= m {
			fn(s, j)
		}
		i = j
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
