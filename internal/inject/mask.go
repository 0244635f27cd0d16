package inject

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultMinMaskLen is the shortest value the redactor masks. Shorter values
// would turn ordinary words and numbers into "***" and make output useless,
// so they are reported instead (see Masker.ShortNames).
const DefaultMinMaskLen = 4

// Mask replaces every masked region of the output.
const Mask = "***"

// Masker is the compiled, immutable pattern set for a group of secret values:
// each value in raw form, its base64 forms (standard and URL alphabets, with
// and without padding, followed by nothing, \n or \r\n, and the three
// alignments it can take inside a longer base64 stream, and the lines of its
// encoding wrapped at 76 and 64 columns), its hex (lower- and upper-case,
// also wrapped at 60 columns), URL-encoded and JSON-escaped forms, and each
// line of a multi-line value. One Masker serves any number of Redactors (one
// per output stream) at once.
//
// Matching runs an Aho-Corasick automaton written for streaming: the state
// after each byte says exactly how many trailing bytes could still begin a
// value, so a Redactor holds back only those and never a whole line. The
// petar-dambovaliev/aho-corasick package in go.mod finds matches in a
// complete haystack but does not expose its state between calls, which a
// streaming writer needs; the automaton here is the textbook one (goto,
// failure and output functions, built breadth-first) with a dense transition
// table for shallow states and sparse lists below, so memory stays bounded
// for thousands of values.
type Masker struct {
	short    []string // names of values too short to mask
	patterns []string // every form masked, for the reference check in tests

	ncls   int
	cls    [256]uint16
	dense  []uint32 // nDense*ncls transitions, flagged with outFlag
	nDense uint32

	// Sparse transitions of deep states: children of s are
	// kidCls/kidTo[kidStart[s]:kidStart[s+1]].
	kidStart []uint32
	kidCls   []uint16
	kidTo    []uint32

	fail  []uint32
	out   []int32 // length of the longest pattern that ends in this state; 0 if none
	hold  []int32 // how many trailing bytes may still become part of a future match
	depth []int32

	// starts is a hashed set of the grams (the gram bytes at a position)
	// at offsets [0, skipStride) of every pattern, and first of the first
	// grams alone. In ordinary output almost no position can begin a
	// value: a gram at q missing from starts rules out a pattern beginning
	// anywhere in [q-skipStride+1, q], so the hot loop probes one position
	// in skipStride without touching the (large) transition table, and
	// first then pins down where a probe's hit may really begin. first also
	// drops shallow partial matches whose start it rules out.
	//
	// Grams are 4 bytes when every pattern is that long: of the 62^3
	// alphanumeric trigrams, a few thousand values' worth of trigrams
	// cover a few percent, so ordinary words and numbers hit a trigram set
	// often; 4-grams are 62 times sparser.
	starts, first []uint64
	startsShift   uint32 // 32 - log2(bits in each set)
	gram          int    // 3 or 4
	gramMask      uint32 // the low gram bytes of a little-endian 4-byte load
	skipStride    int    // 0: no skipping; else as above
}

// maxSkipStride bounds the probe distance: a longer stride puts more
// grams into starts, so more ordinary text hits it. On log-like output
// with 100 and 1,000 32-byte values (4-grams), 8 measured clearly slower
// and 12, 16 and 24 alike within the noise of a shared machine.
const maxSkipStride = 16

func (m *Masker) startHash(p []byte, i int) uint32 {
	w := uint32(p[i]) | uint32(p[i+1])<<8 | uint32(p[i+2])<<16
	if m.gram == 4 {
		w |= uint32(p[i+3]) << 24
	}
	return (w * 0x9E3779B1) >> m.startsShift
}

// mayStart reports whether a pattern can begin at p[i]; p[i+gram-1] must
// exist. False is certain; true may be a hash collision.
func (m *Masker) mayStart(p []byte, i int) bool {
	h := m.startHash(p, i)
	return m.first[h>>6]&(1<<(h&63)) != 0
}

const (
	outFlag = 1 << 31
	idMask  = outFlag - 1
	// maxDenseEntries bounds the dense table (4 bytes each) to 4 MiB. The
	// start filter keeps the scan near the root almost always, so rows for
	// deep states would cost build time and cache without speeding it up.
	maxDenseEntries = 1 << 20
)

// NewMasker compiles the values (name → value) into a pattern set. Values (or
// lines of multi-line values) shorter than minLen bytes are not masked; their
// names are listed by ShortNames so the caller can warn. minLen <= 0 means
// DefaultMinMaskLen.
func NewMasker(values map[string]string, minLen int) *Masker {
	if minLen <= 0 {
		minLen = DefaultMinMaskLen
	}
	m := &Masker{}
	seen := map[string]bool{}
	var pats []string
	add := func(p string) {
		if len(p) >= minLen && !seen[p] {
			seen[p] = true
			pats = append(pats, p)
		}
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := values[name]
		isShort := len(v) < minLen
		lines := splitLines(v)
		if len(lines) > 1 {
			for _, l := range lines {
				if l != "" && len(l) < minLen {
					isShort = true
				}
				for _, f := range forms(l) {
					add(f)
				}
			}
		}
		if len(v) >= minLen {
			for _, f := range forms(v) {
				add(f)
			}
		}
		if isShort && v != "" {
			m.short = append(m.short, name)
		}
	}
	m.patterns = pats
	m.build(pats)
	return m
}

// ShortNames returns the names of values (or of multi-line values with a
// line) shorter than the minimum length, which are therefore not masked.
func (m *Masker) ShortNames() []string { return slices.Clone(m.short) }

func splitLines(v string) []string {
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// wrappedMin is the shortest line of a wrapped encoding that is masked: 8
// characters carry 6 bytes of base64, 4 of hex.
const wrappedMin = 8

// appendLines appends the lines of s wrapped at width characters, those of
// at least wrappedMin, when s is longer than one line.
func appendLines(out []string, s string, width int) []string {
	for i := 0; len(s) > width && i < len(s); i += width {
		if line := s[i:min(i+width, len(s))]; len(line) >= wrappedMin {
			out = append(out, line)
		}
	}
	return out
}

// forms lists the encodings of v a program commonly prints.
func forms(v string) []string {
	b := []byte(v)
	out := []string{v}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		// echo and printf '%s\n' encode the value with its newline, and the
		// characters that mix its last bits with the newline's are as
		// stable as the value's own; \r\n for Windows tools and CRLF files.
		for _, nl := range []string{"", "\n", "\r\n"} {
			for align := range 3 {
				inner, tail := base64Forms(enc, append(b, nl...), align)
				out = append(out, inner, tail, strings.TrimRight(tail, "="))
			}
		}
	}
	// base64 wraps its output at 76 columns and openssl base64 at 64, so a
	// long value encoded alone (printf '%s' or echo into base64) spans
	// lines: each line is masked on its own. A short last line is left out
	// (fewer than wrappedMin characters: too likely elsewhere).
	for _, width := range []int{76, 64} {
		for _, nl := range []string{"", "\n"} {
			out = appendLines(out, base64.StdEncoding.EncodeToString(append(b, nl...)), width)
		}
	}
	// Hex, as xxd -p, Python's bytes.hex() and Go's hex.EncodeToString
	// write it, and upper-case as basenc --base16 and .NET do. Each byte is
	// two characters of its own, so a value inside a longer hex stream is
	// matched too.
	h := hex.EncodeToString(b)
	out = append(out, h, strings.ToUpper(h))
	// xxd -p wraps at 60 characters: a value of more than 30 bytes dumped
	// alone spans lines, masked each on its own, as wrapped base64 is.
	out = appendLines(out, h, 60)
	out = appendLines(out, strings.ToUpper(h), 60)
	for _, e := range []string{url.QueryEscape(v), url.PathEscape(v), strings.ReplaceAll(url.QueryEscape(v), "+", "%20")} {
		out = append(out, e, lowerPercent(e)) // some encoders write %2f, not %2F
	}
	if j, err := json.Marshal(v); err == nil {
		out = append(out, string(j[1:len(j)-1]))
	}
	if j, err := jsonNoHTML(v); err == nil {
		out = append(out, j, jsonASCII(j))
	}
	return out
}

// lowerPercent lowers the hex digits of every %XX escape in s.
func lowerPercent(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if b[j] >= 'A' && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}

// jsonASCII turns the non-ASCII characters of a JSON string body into \uXXXX
// escapes (lower-case hex, surrogate pairs above U+FFFF), the form of
// Python's json.dumps and other ASCII-only encoders.
func jsonASCII(j string) string {
	var b strings.Builder
	for _, r := range j {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}

// base64Forms returns the characters of enc's encoding that depend on the
// bytes of w alone when w starts at byte offset align (0, 1 or 2) of a
// 3-byte group: inner when more data follows (its last group mixes w with
// the next bytes, so it is left out), tail when w ends the data (the last
// group is zero-filled, then padded). A first character shared with the
// byte before w is left out of both: it varies with that byte.
func base64Forms(enc *base64.Encoding, w []byte, align int) (inner, tail string) {
	buf := make([]byte, align+len(w))
	copy(buf[align:], w)
	s := enc.EncodeToString(buf)
	first := (8*align + 5) / 6       // first character starting at or after w
	last := 8 * (align + len(w)) / 6 // characters [first, last) lie wholly inside w
	if last <= first {
		return "", ""
	}
	return s[first:last], s[first:]
}

func jsonNoHTML(v string) (string, error) {
	var sb strings.Builder
	e := json.NewEncoder(&sb)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return "", err
	}
	s := strings.TrimSuffix(sb.String(), "\n")
	return s[1 : len(s)-1], nil
}

// build constructs the automaton. States are numbered breadth-first, so
// depth never decreases with the id and the shallow states that get a dense
// row are exactly ids [0, nDense).
func (m *Masker) build(pats []string) {
	// Byte classes: one per byte that occurs in a pattern, one for the rest.
	var used [256]bool
	for _, p := range pats {
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	m.ncls = 1
	for b := range 256 {
		if used[b] {
			m.cls[b] = uint16(m.ncls) // #nosec G115 -- ncls counts byte classes: at most 256
			m.ncls++
		}
	}
	// Trie over the sorted patterns: each pattern shares its common prefix
	// with the one before, and siblings are created in increasing class
	// order (classes follow byte order). Then renumbered breadth-first.
	type node struct {
		firstKid, lastKid, nextSib int32 // -1: none
		cls                        uint16
		depth                      int32
		term                       bool
	}
	sorted := slices.Clone(pats)
	slices.Sort(sorted)
	nodes := []node{{firstKid: -1, lastKid: -1, nextSib: -1}}
	path := []int32{0} // path[d] is the node for the first d bytes of the previous pattern
	prev := ""
	for _, p := range sorted {
		l := 0
		for l < len(p) && l < len(prev) && p[l] == prev[l] {
			l++
		}
		path = path[:l+1]
		for d := l; d < len(p); d++ {
			parent := path[d]
			id := int32(len(nodes)) // #nosec G115 -- nodes number at most the masked values' total bytes, far below 2^31
			nodes = append(nodes, node{firstKid: -1, lastKid: -1, nextSib: -1, cls: m.cls[p[d]], depth: int32(d + 1)})
			if nodes[parent].lastKid < 0 {
				nodes[parent].firstKid = id
			} else {
				nodes[nodes[parent].lastKid].nextSib = id
			}
			nodes[parent].lastKid = id
			path = append(path, id)
		}
		nodes[path[len(p)]].term = true
		prev = p
	}
	n := len(nodes)
	order := make([]int32, 0, n) // BFS order of old ids
	newID := make([]uint32, n)
	order = append(order, 0)
	for i := 0; i < len(order); i++ {
		old := order[i]
		newID[old] = uint32(i)
		for k := nodes[old].firstKid; k >= 0; k = nodes[k].nextSib {
			order = append(order, k)
		}
	}
	m.kidStart = make([]uint32, n+1)
	m.fail = make([]uint32, n)
	m.out = make([]int32, n)
	m.hold = make([]int32, n)
	depth := make([]int32, n)
	m.depth = depth
	// With every pattern at least L bytes long, a gram at offset
	// [0, L-gram] of a pattern lies wholly inside it, so the probe stride
	// can be up to L-gram+1.
	minPat := math.MaxInt
	for _, p := range pats {
		minPat = min(minPat, len(p))
	}
	m.gram, m.gramMask = 3, 0xFFFFFF
	if minPat >= 4 {
		m.gram, m.gramMask = 4, 0xFFFFFFFF
	}
	if len(pats) == 0 || minPat < 3 {
		m.skipStride = 0
	} else {
		m.skipStride = min(minPat-m.gram+1, maxSkipStride)
	}
	// About 64 bits per gram keeps false hits near 1.5% per probe; the
	// bounds keep a set between 8 KiB and 128 KiB, as a larger one costs
	// more in cache misses than it saves in false hits (measured at 1,000
	// values).
	bits := uint32(16)
	for bits < 20 && 1<<bits < 64*len(pats)*max(1, m.skipStride) {
		bits++
	}
	m.startsShift = 32 - bits
	m.starts = make([]uint64, 1<<bits/64)
	m.first = make([]uint64, 1<<bits/64)
	for _, p := range pats {
		for off := 0; off < m.skipStride; off++ {
			h := m.startHash([]byte(p), off)
			m.starts[h>>6] |= 1 << (h & 63)
			if off == 0 {
				m.first[h>>6] |= 1 << (h & 63)
			}
		}
	}
	m.kidCls = make([]uint16, 0, n)
	m.kidTo = make([]uint32, 0, n)
	for i, old := range order {
		m.kidStart[i] = uint32(len(m.kidCls)) // #nosec G115 -- bounded by the node count, at most the masked values' total bytes
		depth[i] = nodes[old].depth
		for k := nodes[old].firstKid; k >= 0; k = nodes[k].nextSib {
			m.kidCls = append(m.kidCls, nodes[k].cls)
			m.kidTo = append(m.kidTo, newID[k])
		}
		if nodes[old].term {
			m.out[i] = depth[i]
		}
	}
	m.kidStart[n] = uint32(len(m.kidCls)) // #nosec G115 -- bounded by the node count, at most the masked values' total bytes
	// Dense rows for as many shallow states as the budget allows (at least
	// the root, so every failure chain ends in a dense row).
	m.nDense = uint32(max(1, min(n, maxDenseEntries/m.ncls))) // #nosec G115 -- min(n, maxDenseEntries/ncls) is small and positive
	m.dense = make([]uint32, int(m.nDense)*m.ncls)
	// Breadth-first: failure links, outputs, hold, dense rows.
	for s := range uint32(n) { // #nosec G115 -- n is the node count, at most the masked values' total bytes
		if s != 0 {
			// out: own terminal length, else the longest via the failure link
			// (which has a smaller id, so it is final already).
			if m.out[s] == 0 {
				m.out[s] = m.out[m.fail[s]]
			}
		}
		if m.kidStart[s+1] > m.kidStart[s] {
			m.hold[s] = depth[s]
		} else if s != 0 {
			m.hold[s] = m.hold[m.fail[s]]
		}
		// Failure links of the children.
		for k := m.kidStart[s]; k < m.kidStart[s+1]; k++ {
			child, c := m.kidTo[k], m.kidCls[k]
			if s == 0 {
				m.fail[child] = 0
			} else {
				m.fail[child] = m.next(m.fail[s], c) & idMask
			}
		}
		if s < m.nDense {
			row := m.dense[int(s)*m.ncls : int(s+1)*m.ncls]
			for c := range m.ncls {
				if s == 0 {
					row[c] = 0
				} else {
					row[c] = m.dense[int(m.fail[s])*m.ncls+c]
				}
			}
			for k := m.kidStart[s]; k < m.kidStart[s+1]; k++ {
				row[m.kidCls[k]] = m.kidTo[k]
			}
		}
	}
	// Flag transitions into states with an output, so the hot loop tests
	// one bit. Children are numbered after their parent and their outputs
	// are final once the loop above has passed them; flag afterwards.
	for i, to := range m.kidTo {
		if m.out[to] > 0 {
			m.kidTo[i] = to | outFlag
		}
	}
	for i, to := range m.dense {
		if m.out[to&idMask] > 0 {
			m.dense[i] = to | outFlag
		}
	}
}

// next returns the transition from s on class c, flagged with outFlag when
// the target has an output.
func (m *Masker) next(s uint32, c uint16) uint32 {
	for {
		if s < m.nDense {
			return m.dense[int(s)*m.ncls+int(c)]
		}
		lo, hi := m.kidStart[s], m.kidStart[s+1]
		for k := lo; k < hi; k++ {
			if m.kidCls[k] == c {
				return m.kidTo[k]
			}
		}
		s = m.fail[s]
	}
}

// Redactor is an io.WriteCloser that writes to W with every value of its
// Masker replaced by Mask. Overlapping or nested matches are masked as one
// region. It holds back only the trailing bytes that could still begin a
// value, so a prompt without a newline still shows; Close writes the rest.
// A Redactor is for one stream and is not safe for concurrent use.
type Redactor struct {
	m *Masker
	w io.Writer

	state   uint32
	pos     int64  // absolute offset of the next input byte
	base    int64  // absolute offset of pending[0]
	pending []byte // input not yet written

	// Mask regions (absolute [start, end)) not yet written; the last one
	// may still grow while open.
	regions []region
	out     []byte
	closed  bool
	err     error
}

type region struct{ start, end int64 }

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("inject: write to closed redactor")

// NewRedactor returns a Redactor writing to w.
func (m *Masker) NewRedactor(w io.Writer) *Redactor {
	return &Redactor{m: m, w: w}
}

// Write masks p and writes whatever is decided to the underlying writer. It
// reports len(p) unless the underlying writer fails.
func (r *Redactor) Write(p []byte) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	if r.err != nil {
		return 0, r.err
	}
	m := r.m
	s := r.state
	pos := r.pos
	dense, ncls, nDense := m.dense, m.ncls, m.nDense
	stride := m.skipStride
	useStarts := stride > 0
	gram := m.gram
	n := len(p)
	for i := 0; i < n; {
		if s == 0 && stride > 0 {
			i = m.skip(p, i)
		}
		c := m.cls[p[i]]
		var t uint32
		if s < nDense {
			t = dense[int(s)*ncls+int(c)]
		} else {
			t = m.next(s, c)
		}
		s = t & idMask
		i++
		if t&outFlag != 0 {
			end := pos + int64(i)
			r.addRegion(end-int64(m.out[s]), end)
		}
		// A shallow state stands for partial matches starting one or two
		// bytes back; if no pattern begins with the gram there, none of
		// them can complete, so start over from the root.
		if useStarts && s != 0 && i+gram-2 < n {
			if d := int(m.depth[s]); d <= 2 && i-d >= 0 &&
				!m.mayStart(p, i-d) && (d == 1 || !m.mayStart(p, i-1)) {
				s = 0
			}
		}
	}
	r.state = s
	r.pos = pos + int64(len(p))
	return len(p), r.flush(p, r.pos-int64(m.hold[s]))
}

// skip returns the first position at or after i where a pattern may begin,
// or where too few bytes remain to tell (the automaton takes those).
func (m *Masker) skip(p []byte, i int) int {
	n := len(p)
	k := m.skipStride
	shift, gmask := m.startsShift, m.gramMask
	starts, first := m.starts, m.first
	// Probe the gram at q = i+k-1: a miss rules out [i, q]. Both loops
	// load 4 bytes, which exist for every position up to q.
	for q := i + k - 1; q+3 < n; q = i + k - 1 {
		h := (binary.LittleEndian.Uint32(p[q:]) & gmask) * 0x9E3779B1 >> shift
		if starts[h>>6]&(1<<(h&63)) == 0 {
			i += k
			continue
		}
		for ; i <= q; i++ {
			h := (binary.LittleEndian.Uint32(p[i:]) & gmask) * 0x9E3779B1 >> shift
			if first[h>>6]&(1<<(h&63)) != 0 {
				return i
			}
		}
	}
	for ; i+m.gram-1 < n; i++ {
		if m.mayStart(p, i) {
			return i
		}
	}
	return i
}

// readBufSize is ReadFrom's block size. A Linux pipe holds 64 KiB by
// default (more if the child raised it), so a read can return more than
// io.Copy's 32 KiB default; each block costs one scan start and one write
// downstream however large it is. A read returns whatever the pipe holds,
// so a large buffer never delays output.
const readBufSize = 256 << 10

// ReadFrom masks src until EOF, reading in large blocks. os/exec copies a
// child's output to a writer with io.Copy, which calls it, so tokenward run
// gets it without a copy loop of its own. It returns the bytes read and the
// first error other than io.EOF.
func (r *Redactor) ReadFrom(src io.Reader) (int64, error) {
	buf := make([]byte, readBufSize)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			total += int64(n)
			if _, werr := r.Write(buf[:n]); werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (r *Redactor) addRegion(start, end int64) {
	// end is the current position, so it is the largest end yet; the new
	// region swallows every region it overlaps.
	for n := len(r.regions); n > 0 && start < r.regions[n-1].end; n-- {
		start = min(start, r.regions[n-1].start)
		r.regions = r.regions[:n-1]
	}
	r.regions = append(r.regions, region{start, end})
}

// flush writes every byte before boundary that is decided: future matches
// start at or after boundary, so a region ending at or before it is
// complete, and one ending after it may still grow and is held from its start.
// The input not yet written is pending followed by p (the bytes of the
// current Write, which are not copied unless held back); what is held back
// becomes pending. Everything decided goes out in one write.
func (r *Redactor) flush(p []byte, boundary int64) error {
	split := r.base + int64(len(r.pending)) // absolute offset of p[0]
	at := r.base
	done := 0
	var out []byte
	if len(r.pending) == 0 && (len(r.regions) == 0 || r.regions[0].end > boundary) {
		// The usual case: nothing held from before and nothing to mask
		// yet, so the decided prefix of p goes out as it is.
		if len(r.regions) > 0 {
			boundary = min(boundary, r.regions[0].start)
		}
		if boundary > at {
			out = p[:boundary-split]
			at = boundary
		}
	} else {
		r.out = r.out[:0]
		for _, g := range r.regions {
			if g.end > boundary {
				boundary = min(boundary, g.start)
				break
			}
			r.out = r.appendRange(r.out, p, split, at, g.start)
			r.out = append(r.out, Mask...)
			at = g.end
			done++
		}
		if boundary > at {
			r.out = r.appendRange(r.out, p, split, at, boundary)
			at = boundary
		}
		out = r.out
	}
	r.regions = r.regions[:copy(r.regions, r.regions[done:])]
	if at >= split {
		r.pending = append(r.pending[:0], p[at-split:]...)
	} else {
		r.pending = append(r.pending[:copy(r.pending, r.pending[at-r.base:])], p...)
	}
	r.base = at
	if len(out) == 0 {
		return nil
	}
	if _, err := r.w.Write(out); err != nil {
		r.err = err
		return err
	}
	return nil
}

// appendRange appends the input bytes at absolute offsets [from, to), which
// lie in pending (below split) or p (from split on).
func (r *Redactor) appendRange(out, p []byte, split, from, to int64) []byte {
	if from < split {
		out = append(out, r.pending[from-r.base:min(to, split)-r.base]...)
		from = split
	}
	if to > from {
		out = append(out, p[from-split:to-split]...)
	}
	return out
}

// Close writes the held tail. It does not close the underlying writer.
func (r *Redactor) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.err != nil {
		return r.err
	}
	return r.flush(nil, r.pos)
}
