package scan

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
)

// ManagedFingerprint is the keyed fingerprint a FingerprintSource must return
// for each managed value: HMAC-SHA256(key, value). The server side uses this
// function so both ends agree byte for byte.
func ManagedFingerprint(key, value []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(value)
	var sum [32]byte
	m.Sum(sum[:0])
	return sum
}

// FingerprintSource returns the keyed fingerprints of every value the server
// manages (CURRENT and PREVIOUS versions): HMAC-SHA256(key, value) → the
// secret's path. key is fresh and random for each scan, so the set is useless
// outside it and the scanner never receives plaintext.
type FingerprintSource interface {
	Fingerprints(ctx context.Context, key []byte) (map[[32]byte]string, error)
}

// Remediator acts on confirmed leaks: it revokes a leaked tokenward token and
// starts rotation of a leaked managed secret.
type Remediator interface {
	ReportLeakedToken(ctx context.Context, token string) error
	RotateLeakedSecret(ctx context.Context, path string) error
}

// Candidate bounds for managed-value lookups.
const (
	minManagedLen = 8
	maxManagedLen = 4096
)

func isStrictDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`', '=', ':', ',', ';', '(', ')', '[', ']', '{', '}', '<', '>':
		return true
	}
	return false
}

// managedLayer looks up every candidate substring of data in the managed
// fingerprint set: maximal runs between strict delimiters, maximal runs
// between whitespace and quotes (URLs with passwords), quoted strings and the
// value of key=value / key: value lines.
func (w *Worker) managedLayer(path string, data []byte, org *origin) {
	runs := func(delim func(byte) bool) {
		n := len(data)
		for i := 0; i < n; {
			if delim(data[i]) {
				i++
				continue
			}
			j := i
			for j < n && !delim(data[j]) {
				j++
			}
			w.lookup(path, data, i, j, org)
			i = j
		}
	}
	runs(isStrictDelim)
	runs(isSpaceOrQuote)
	for ls := 0; ls < len(data); {
		le := bytes.IndexByte(data[ls:], '\n')
		if le < 0 {
			le = len(data)
		} else {
			le += ls
		}
		line := data[ls:le]
		// Quoted strings, which may hold spaces.
		for q := 0; q < len(line); q++ {
			c := line[q]
			if c != '"' && c != '\'' && c != '`' {
				continue
			}
			if k := bytes.IndexByte(line[q+1:], c); k >= 0 {
				w.lookup(path, data, ls+q+1, ls+q+1+k, org)
				q += k + 1
			}
		}
		// The value of an assignment.
		if k := bytes.IndexAny(line, "=:"); k >= 0 {
			a, b := k+1, len(line)
			for a < b && (line[a] == ' ' || line[a] == '\t' || line[a] == '"' || line[a] == '\'') {
				a++
			}
			for b > a && (line[b-1] == ' ' || line[b-1] == '\t' || line[b-1] == '\r' || line[b-1] == ';' ||
				line[b-1] == ',' || line[b-1] == '"' || line[b-1] == '\'') {
				b--
			}
			w.lookup(path, data, ls+a, ls+b, org)
		}
		ls = le + 1
	}
}

func (w *Worker) lookup(path string, data []byte, a, b int, org *origin) {
	if b-a < minManagedLen || b-a > maxManagedLen {
		return
	}
	w.mac.Reset()
	w.mac.Write(data[a:b])
	w.mac.Sum(w.sum[:0])
	name, ok := w.s.opts.Managed[w.sum]
	if !ok {
		return
	}
	for i := range w.out {
		f := &w.out[i]
		if f.RuleID == ManagedRuleID && f.ManagedSecret == name && f.Path == path {
			if org != nil || w.sameStart(data, a, f) {
				return
			}
		}
	}
	r := &Rule{ID: ManagedRuleID, Description: "leak of managed secret " + name}
	var f Finding
	if org != nil {
		f = w.newFinding(r, path, string(data[a:b]), org.line, org.col, org.endLine, org.endCol, 0)
		f.Decoded = org.chain
	} else {
		l, c := w.lineCol(data, a)
		el, ec := w.lineCol(data, b)
		f = w.newFinding(r, path, string(data[a:b]), l, c, el, ec-1, 0)
	}
	f.Confirmed = true
	f.ManagedSecret = name
	f.Fingerprint = fingerprint(ManagedRuleID, path, name)
	f.secret = "" // never keep a managed value's plaintext
	w.out = append(w.out, f)
}

func (w *Worker) sameStart(data []byte, a int, f *Finding) bool {
	l, c := w.lineCol(data, a)
	return f.Line == l && f.Column == c
}
