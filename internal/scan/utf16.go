package scan

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// utf16Mark reports whether data starts with a UTF-16 byte order mark, and
// which. FF FE 00 00 is UTF-32LE's mark, not UTF-16's: such data stays
// binary. Without a mark, UTF-16 stays binary too: telling it from binary
// formats that hold UTF-16 strings would be a guess, and the Windows tools
// that write UTF-16 (PowerShell 5, reg export, Visual Studio) write the mark.
func utf16Mark(data []byte) (bigEndian, ok bool) {
	if len(data) < 2 {
		return false, false
	}
	switch {
	case data[0] == 0xFF && data[1] == 0xFE:
		return false, len(data) < 4 || data[2] != 0 || data[3] != 0
	case data[0] == 0xFE && data[1] == 0xFF:
		return true, true
	}
	return false, false
}

// appendUTF16 appends the UTF-8 encoding of src, UTF-16 code units without
// their mark, to dst, stopping where dst would grow past limit bytes. An odd
// last byte is dropped; an unpaired surrogate becomes U+FFFD.
func appendUTF16(dst, src []byte, bigEndian bool, limit int) []byte {
	order := binary.ByteOrder(binary.LittleEndian)
	if bigEndian {
		order = binary.BigEndian
	}
	for i := 0; i+1 < len(src); i += 2 {
		r := rune(order.Uint16(src[i:]))
		if r < utf8.RuneSelf {
			if len(dst) >= limit {
				break
			}
			dst = append(dst, byte(r))
			continue
		}
		if utf16.IsSurrogate(r) {
			pair := utf8.RuneError
			if i+3 < len(src) {
				pair = utf16.DecodeRune(r, rune(order.Uint16(src[i+2:])))
			}
			if pair != utf8.RuneError {
				i += 2
			}
			r = pair
		}
		if len(dst)+utf8.RuneLen(r) > limit {
			break
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// text returns what Scan reads of data: data itself, or its UTF-8 decoding
// (at most MaxFileSize bytes, in the worker's reused buffer) when it starts
// with a UTF-16 mark; false when it is binary. Findings' lines and columns
// are those of the decoded text.
func (w *Worker) text(data []byte) ([]byte, bool) {
	if bigEndian, ok := utf16Mark(data); ok {
		w.utf8 = appendUTF16(w.utf8[:0], data[2:], bigEndian, int(w.s.opts.MaxFileSize))
		data = w.utf8
	}
	return data, !IsBinary(data)
}
