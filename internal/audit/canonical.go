// Package audit keeps the tamper-evident audit trail: a SHA-256 hash chain
// over tokenward.AuditEntry, Ed25519-signed checkpoints, verification of the
// store or an exported copy, and a broker that writes every entry to the
// primary store (fail-closed) and to secondary sinks.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
	b := make([]byte, 0, 256)
	b = append(b, canonicalMagic...)
	b = appendInt(b, e.Seq)
	b = appendTime(b, e.Time)
	for _, s := range []string{e.RequestID, e.TokenID, e.TokenName, e.Action, e.Resource, e.Outcome, e.Reason} {
		b = appendString(b, s)
	}
	b = appendInt(b, int64(e.Status))
	b = appendString(b, e.SourceIP)
	b = appendString(b, e.UserAgent)
	b = appendMap(b, e.CI)
	b = appendMap(b, e.Meta)
	b = appendString(b, e.PrevHash)
	return b
}

// HashEntry returns hex(SHA-256(Canonical(e))): the value e.Hash must hold.
func HashEntry(e *tokenward.AuditEntry) string {
	sum := sha256.Sum256(Canonical(e))
	return hex.EncodeToString(sum[:])
}

func appendInt(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

func appendTime(b []byte, t time.Time) []byte {
	b = appendInt(b, t.Unix())
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendMap encodes a nil and an empty map alike: JSON (omitempty) and most
// stores cannot tell them apart either.
func appendMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
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
