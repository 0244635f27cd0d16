// Package audit keeps the tamper-evident audit trail: a SHA-256 hash chain
// over tokenward.AuditEntry, Ed25519-signed checkpoints, verification of the
// store or an exported copy, and a broker that writes every entry to the
// primary store (fail-closed) and to secondary sinks.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"slices"
	"time"

	"github.com/tokenward/tokenward"
)

// GenesisHash is the PrevHash of the first entry of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// canonicalMagic starts every canonical encoding; the trailing digit is the
// format version, so a future change of the encoding cannot collide with v1.
const canonicalMagic = "tokenward-audit-entry-v1\x00"

// Canonical returns the canonical encoding (version 1) of every field of e
// but Hash. It is deterministic and unambiguous: strings are length-prefixed,
// map keys are sorted, and the time is the absolute instant (seconds and
// nanoseconds since the Unix epoch, whatever its location). docs/audit.md
// specifies it byte by byte.
func Canonical(e *tokenward.AuditEntry) []byte {
	return appendCanonical(make([]byte, 0, 512), e)
}

// appendCanonical appends Canonical(e) to b.
func appendCanonical(b []byte, e *tokenward.AuditEntry) []byte {
	return appendCanonicalCI(b, e, nil)
}

// appendCanonicalCI is appendCanonical with e.CI's encoding remembered in
// ci, which may be nil.
func appendCanonicalCI(b []byte, e *tokenward.AuditEntry, ci *ciEncodings) []byte {
	b = append(b, canonicalMagic...)
	b = appendInt(b, e.Seq)
	b = appendTime(b, e.Time)
	for _, s := range []string{e.RequestID, e.TokenID, e.TokenName, e.Action, e.Resource, e.Outcome, e.Reason} {
		b = appendString(b, s)
	}
	b = appendInt(b, int64(e.Status))
	b = appendString(b, e.SourceIP)
	b = appendString(b, e.UserAgent)
	b = ci.append(b, e.CI)
	b = appendMap(b, e.Meta)
	b = appendString(b, e.PrevHash)
	return b
}

// HashEntry returns hex(SHA-256(Canonical(e))): the value e.Hash must hold.
func HashEntry(e *tokenward.AuditEntry) string {
	sum := sha256.Sum256(Canonical(e))
	return hex.EncodeToString(sum[:])
}

func appendInt(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) } // #nosec G115 -- two's-complement bit pattern on purpose; the decoder reverses it

func appendTime(b []byte, t time.Time) []byte {
	b = appendInt(b, t.Unix())
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond())) // #nosec G115 -- Nanosecond() is in [0, 1e9)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s))) // #nosec G115 -- audit strings are bounded by the request body limit, far below 4 GiB
	return append(b, s...)
}

// appendMap encodes a nil and an empty map alike: JSON (omitempty) and most
// stores cannot tell them apart either.
func appendMap(b []byte, m map[string]string) []byte {
	var small [16]string // no allocation for the usual few attributes
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys))) // #nosec G115 -- a map of attributes, bounded by the request body limit
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
	return b
}

// ciEncodings remembers the canonical encoding of the CI maps entries
// carry, by the map's identity: a just-in-time token's CI (a dozen facts)
// is one map shared by the entries of all its requests, and sorting and
// encoding it again was most of encoding such an entry. Keying by identity
// relies on the broker's contract that an entry's maps are not changed once
// recorded (sqlrow.CIRefs relies on it too; a breach would show in verify,
// the stored facts then differing from the hashed ones); the map is kept,
// so its address is not reused by another map while it is remembered. Not
// safe for concurrent use: a Chain uses it under its lock.
type ciEncodings struct {
	byMap map[uintptr]ciEncoding
}

type ciEncoding struct {
	m map[string]string // kept alive: its address is the key
	b []byte
}

// ciEncodingsMax bounds ciEncodings: past it, it starts over.
const ciEncodingsMax = 1024

// append appends appendMap(b, m), remembered. A nil c remembers nothing.
func (c *ciEncodings) append(b []byte, m map[string]string) []byte {
	if c == nil || len(m) == 0 {
		return appendMap(b, m)
	}
	p := reflect.ValueOf(m).Pointer()
	if k, ok := c.byMap[p]; ok {
		return append(b, k.b...)
	}
	start := len(b)
	b = appendMap(b, m)
	if c.byMap == nil || len(c.byMap) >= ciEncodingsMax {
		c.byMap = make(map[uintptr]ciEncoding)
	}
	c.byMap[p] = ciEncoding{m, bytes.Clone(b[start:])}
	return b
}

// cloneEntry returns a deep copy of e, so sinks working in the background
// never share maps with a caller that may reuse its entry.
func cloneEntry(e *tokenward.AuditEntry) *tokenward.AuditEntry {
	c := *e
	if e.CI != nil {
		c.CI = make(map[string]string, len(e.CI))
		for k, v := range e.CI {
			c.CI[k] = v
		}
	}
	if e.Meta != nil {
		c.Meta = make(map[string]string, len(e.Meta))
		for k, v := range e.Meta {
			c.Meta[k] = v
		}
	}
	return &c
}

// ParseCanonical reads an encoding made by Canonical and returns the entry
// with Hash computed over b (so a stored encoding is its own proof). Its
// input comes from disk (the journal), so every length is checked against
// what is left and trailing bytes are refused.
func ParseCanonical(b []byte) (*tokenward.AuditEntry, error) {
	d := canonicalDecoder{b: b}
	if !d.prefix(canonicalMagic) {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit: not a version 1 entry encoding")
	}
	e := &tokenward.AuditEntry{}
	e.Seq = d.int()
	sec, nsec := d.int(), d.uint32()
	if nsec >= 1e9 {
		d.fail("nanoseconds out of range")
	}
	e.Time = time.Unix(sec, int64(nsec)).UTC()
	for _, s := range []*string{&e.RequestID, &e.TokenID, &e.TokenName, &e.Action, &e.Resource, &e.Outcome, &e.Reason} {
		*s = d.string()
	}
	status := d.int()
	if status < 0 || status > 999 {
		d.fail("status out of range")
	}
	e.Status = int(status)
	e.SourceIP = d.string()
	e.UserAgent = d.string()
	e.CI = d.stringMap()
	e.Meta = d.stringMap()
	e.PrevHash = d.string()
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	e.Hash = HashEntry(e)
	return e, nil
}

type canonicalDecoder struct {
	b   []byte
	err error
}

func (d *canonicalDecoder) fail(why string) {
	if d.err == nil {
		d.err = tokenward.Errorf(tokenward.EINVALID, "audit: bad entry encoding: %s", why)
	}
	d.b = nil
}

func (d *canonicalDecoder) prefix(p string) bool {
	if len(d.b) < len(p) || string(d.b[:len(p)]) != p {
		return false
	}
	d.b = d.b[len(p):]
	return true
}

func (d *canonicalDecoder) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *canonicalDecoder) uint32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *canonicalDecoder) int() int64 {
	if p := d.take(8); p != nil {
		return int64(binary.BigEndian.Uint64(p)) // #nosec G115 -- reverses appendInt's bit pattern
	}
	return 0
}

func (d *canonicalDecoder) string() string {
	n := d.uint32()
	if uint64(n) > uint64(len(d.b)) {
		d.fail("truncated")
		return ""
	}
	return string(d.take(int(n)))
}

// stringMap reads a map; keys must be strictly increasing, as Canonical
// writes them, so an encoding has one reading only. Zero pairs read as nil.
func (d *canonicalDecoder) stringMap() map[string]string {
	n := d.uint32()
	if n == 0 || d.err != nil {
		return nil
	}
	if uint64(n)*8 > uint64(len(d.b)) { // each pair holds two lengths at least
		d.fail("truncated")
		return nil
	}
	m := make(map[string]string, n)
	prev := ""
	for i := uint32(0); i < n && d.err == nil; i++ {
		k, v := d.string(), d.string()
		if i > 0 && k <= prev {
			d.fail("map keys out of order")
			return nil
		}
		m[k], prev = v, k
	}
	return m
}
