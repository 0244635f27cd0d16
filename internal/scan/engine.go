package scan

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sort"
	"strings"
	"time"
)

// ManagedRuleID is the rule id of a leak of a value tokenward manages.
const ManagedRuleID = "tokenward-managed-secret"

// Defaults for Options.
const (
	DefaultMaxFileSize = 10 << 20
	DefaultDecodeDepth = 2
)

// Window bounds around a keyword hit: the hit's line, at most lineBack bytes
// before and lineFwd bytes after it; rules whose regex may span lines (PEM
// blocks) get multilineFwd bytes after the hit.
const (
	lineBack     = 1024
	lineFwd      = 2048
	multilineFwd = 16 << 10
)

// Decoding bounds: encoded runs shorter than minEncodedRun are not decoded,
// longer than maxEncodedRun are not either (embedded images, bundles), and a
// buffer decodes at most maxDecodedPerBuffer bytes in all.
const (
	minEncodedRun       = 20
	maxEncodedRun       = 256 << 10
	maxDecodedPerBuffer = 8 << 20
)

// Options tune a Scanner. The zero value means the defaults.
type Options struct {
	MaxFileSize int64 // files larger than this are skipped; 0: DefaultMaxFileSize
	DecodeDepth int   // base64/hex/percent decoding depth; 0: default, <0: off
	Workers     int   // parallel workers; 0: GOMAXPROCS
	// Managed holds HMAC-SHA256(ManagedKey, value) → secret path for every
	// value the server manages; an exact occurrence of one is a finding.
	Managed    map[[32]byte]string
	ManagedKey []byte
	// Now tells whether a decoded JWT has expired; nil: time.Now.
	Now func() time.Time
}

// Finding is one detected secret. It never holds the secret in plaintext in
// any exported field; Secret() gives it to remediation code only.
type Finding struct {
	RuleID        string    `json:"rule_id"`
	Description   string    `json:"description"`
	Path          string    `json:"path"`
	Line          int       `json:"line"`
	Column        int       `json:"column"`
	EndLine       int       `json:"end_line"`
	EndColumn     int       `json:"end_column"`
	Redacted      string    `json:"secret"`
	Entropy       float64   `json:"entropy"`
	Confirmed     bool      `json:"confirmed"`
	Decoded       string    `json:"decoded,omitempty"`        // e.g. "base64" or "hex>base64"
	ManagedSecret string    `json:"managed_secret,omitempty"` // the leaked managed value's path
	Commit        string    `json:"commit,omitempty"`
	Author        string    `json:"author,omitempty"`
	Email         string    `json:"email,omitempty"`
	Date          time.Time `json:"date,omitzero"`
	Fingerprint   string    `json:"fingerprint"` // stable id for baselines; a hash, not the secret
	Tags          []string  `json:"tags,omitempty"`
	// Why it was reported, beside the rule and entropy: the name the value
	// was assigned to (when there is one) and the value's shape.
	Name  string `json:"name,omitempty"`
	Shape string `json:"shape,omitempty"`
	// Detail is what a structural check learned, e.g. a JWT's alg, issuer
	// and expiry; never any part of the secret.
	Detail string `json:"detail,omitempty"`

	secret   string
	generic  bool
	detector bool // found by the assignment grammar: any other finding of the value wins
	// AND allowlists with commits whose other checks all matched: they
	// suppress the finding once history attribution knows its commit.
	commitAllow []*Allowlist
}

// Secret returns the detected value itself, for remediation; "" for managed
// secrets (the scanner never keeps their plaintext). Never log or print it.
func (f *Finding) Secret() string { return f.secret }

// Scanner runs a rule set over buffers. It is safe for concurrent use; each
// goroutine gets its own worker state through NewWorker.
type Scanner struct {
	rules       []*Rule
	allow       []*Allowlist
	kw          *keywordDFA
	kwRules     [][]int // keyword pattern index → rule indexes
	alwaysRules []int   // rules without keywords: tried on every buffer
	pathRules   []int   // rules with a path and no regex: report the file
	opts        Options
}

func (s *Scanner) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// New compiles cfg into a Scanner.
func New(cfg *Config, opts Options) (*Scanner, error) {
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if opts.DecodeDepth == 0 {
		opts.DecodeDepth = DefaultDecodeDepth
	}
	if opts.DecodeDepth < 0 {
		opts.DecodeDepth = 0
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if len(opts.Managed) > 0 && len(opts.ManagedKey) < 16 {
		return nil, errors.New("scan: managed fingerprints need a key of at least 16 bytes")
	}
	s := &Scanner{rules: cfg.Rules, allow: cfg.Allowlists, opts: opts}
	kwIndex := map[string]int{}
	var patterns []string
	for i, r := range s.rules {
		if r.Regex == nil && r.Detector == "" {
			s.pathRules = append(s.pathRules, i)
			continue
		}
		if len(r.Keywords) == 0 {
			s.alwaysRules = append(s.alwaysRules, i)
			continue
		}
		for _, k := range r.Keywords {
			ki, ok := kwIndex[k]
			if !ok {
				ki = len(patterns)
				kwIndex[k] = ki
				patterns = append(patterns, k)
				s.kwRules = append(s.kwRules, nil)
			}
			if !containsInt(s.kwRules[ki], i) {
				s.kwRules[ki] = append(s.kwRules[ki], i)
			}
		}
	}
	kw, err := newKeywordDFA(patterns)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	s.kw = kw
	return s, nil
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// SlowRules returns the ids of rules without keywords: they run their regex
// over every buffer and so cost the most.
func (s *Scanner) SlowRules() []string {
	var ids []string
	for _, i := range s.alwaysRules {
		ids = append(ids, s.rules[i].ID)
	}
	return ids
}

// Rules returns the scanner's rules.
func (s *Scanner) Rules() []*Rule { return s.rules }

// MaxFileSize is the size above which files are skipped.
func (s *Scanner) MaxFileSize() int64 { return s.opts.MaxFileSize }

// Worker holds one goroutine's scratch state so scanning does not allocate
// per line. It is not safe for concurrent use.
type Worker struct {
	s        *Scanner
	winStart [][]int // per decode depth, per rule: last window scanned
	winEnd   [][]int
	mac      hash.Hash
	sum      [32]byte
	out      []Finding
	decoded  int // bytes decoded in the current top-level buffer
	// line cursor for offset → line/column
	lcData      []byte
	lcOff       int
	lcLine      int
	lcLineStart int
	seen        map[seenKey]bool // findings at depth 0, to drop the same match reached twice
	// The current buffer's kind, for the assignment grammar.
	code, testPath bool
	words          []string     // scratch for nameWords
	pending        []*Allowlist // set by allowed: AND lists waiting for a commit
	utf8           []byte       // the current buffer decoded from UTF-16
	binary         bool         // the current buffer was skipped as binary
}

type seenKey struct {
	rule     *Rule
	off, end int
}

// NewWorker returns scratch state for one goroutine.
func (s *Scanner) NewWorker() *Worker {
	w := &Worker{s: s}
	for d := 0; d <= s.opts.DecodeDepth; d++ {
		w.winStart = append(w.winStart, make([]int, len(s.rules)))
		w.winEnd = append(w.winEnd, make([]int, len(s.rules)))
	}
	if len(s.opts.Managed) > 0 {
		w.mac = hmac.New(sha256.New, s.opts.ManagedKey)
	}
	return w
}

// ScanBytes scans one buffer as if it were the file at path and returns its
// findings (without commit information). Binary content is skipped; UTF-16
// with a byte order mark is decoded.
func (s *Scanner) ScanBytes(path string, data []byte) []Finding {
	return s.NewWorker().Scan(path, data)
}

// IsBinary reports whether data looks binary (a NUL byte in its first 8 KB).
// Scan asks it after decoding UTF-16 that has a byte order mark.
func IsBinary(data []byte) bool {
	if len(data) > 8192 {
		data = data[:8192]
	}
	return bytes.IndexByte(data, 0) >= 0
}

// Scan scans one buffer as the file at path. The returned slice is reused by
// the next call.
func (w *Worker) Scan(path string, data []byte) []Finding {
	return w.scan(path, data, true)
}

// scan is Scan; with shadow false it keeps the findings dropShadowedGeneric
// would hide behind others, for history, where a commit allowlist may drop
// the others once attribution knows their commit.
func (w *Worker) scan(path string, data []byte, shadow bool) []Finding {
	w.out = w.out[:0]
	w.decoded = 0
	if len(w.seen) > 0 {
		clear(w.seen)
	}
	for _, ri := range w.s.pathRules {
		r := w.s.rules[ri]
		if r.Path.MatchString(path) && !w.allowed(r, path, "", nil, nil) {
			f := w.newFinding(r, path, "", 1, 1, 1, 1, 0)
			f.commitAllow = w.takePending()
			w.out = append(w.out, f)
		}
	}
	data, ok := w.text(data)
	if w.binary = !ok; w.binary {
		return w.out
	}
	w.code, w.testPath = isCodePath(path), isTestPath(path)
	w.scanLayer(path, data, 0, nil)
	if shadow {
		w.out = dropShadowedGeneric(w.out)
	}
	return w.out
}

// origin is where a decoded layer sits in the top-level buffer.
type origin struct {
	line, col, endLine, endCol int
	chain                      string
}

func (w *Worker) scanLayer(path string, data []byte, depth int, org *origin) {
	s := w.s
	ws, we := w.winStart[depth], w.winEnd[depth]
	for i := range ws {
		ws[i], we[i] = -1, -1
	}
	w.lcData = nil
	if d := s.kw; len(d.lens) > 0 {
		// The keyword DFA loop, inlined: one table load per byte.
		trans, class, nclass, has := d.trans, &d.class, d.nclass, d.hasOuts
		st := 0
		for i, c := range data {
			st = int(trans[st*nclass+int(class[c])])
			if !has[st] {
				continue
			}
			for _, k := range d.outs[st] {
				end := i + 1
				start := end - d.lens[k]
				for _, ri := range s.kwRules[k] {
					if start >= ws[ri] && end <= we[ri] && !cutNear(data, we[ri], end, s.rules[ri].multiline) {
						continue // already inside this rule's last window
					}
					r := s.rules[ri]
					if r.Detector != "" {
						if !w.testPath && (r.Path == nil || r.Path.MatchString(path)) {
							w.applyDetector(r, path, data, start, end, org)
						}
						continue
					}
					if r.AssignAfterKeyword && !assignmentFollows(data, end) {
						continue // "key" in prose or code, not key = value
					}
					if r.Path != nil && !r.Path.MatchString(path) {
						continue
					}
					a, b := window(data, start, end, r.multiline)
					if prev := we[ri] - 256; prev > a && prev < start {
						a = prev // do not rescan most of the last window
					}
					ws[ri], we[ri] = a, b
					w.applyRule(r, path, data, a, b, org)
				}
			}
		}
	}
	for _, ri := range s.alwaysRules {
		r := s.rules[ri]
		if r.Path != nil && !r.Path.MatchString(path) {
			continue
		}
		w.applyRule(r, path, data, 0, len(data), org)
	}
	if w.mac != nil {
		w.managedLayer(path, data, org)
	}
	if depth < s.opts.DecodeDepth {
		w.decodeLayer(path, data, depth, org)
	}
}

// rescanMargin: a keyword hit inside a rule's last window is scanned again
// when that window was cut by its forward bound (not at a line end or the
// buffer's end) less than this many bytes after the hit, since the cut may
// have truncated the hit's secret. Each rescan moves the window's end at
// least lineFwd-rescanMargin bytes on, so a long line stays linear.
const rescanMargin = lineFwd / 2

// cutNear reports whether a window ending at we was cut short by its bound
// within rescanMargin bytes after a keyword hit ending at end.
func cutNear(data []byte, we, end int, multiline bool) bool {
	if we >= len(data) || !multiline && data[we] == '\n' {
		return false
	}
	return we-end < rescanMargin
}

// assignmentFollows reports whether data[i:] starts with [\w.-]*, an
// optional quote, at most 10 blanks and an assignment operator (: = => :=
// ?=): what a rule with AssignAfterKeyword requires after its keyword.
// [\w.-]* is taken greedily; that is exact because a quote, blank or
// operator can never be part of it.
func assignmentFollows(data []byte, i int) bool {
	n := len(data)
	for i < n && isWordDotDash(data[i]) {
		i++
	}
	if i < n && (data[i] == '\'' || data[i] == '"') {
		i++
	}
	for k := 0; k < 10 && i < n && (data[i] == ' ' || data[i] == '\t'); k++ {
		i++
	}
	if i >= n {
		return false
	}
	switch data[i] {
	case ':', '=':
		return true
	case '?':
		return i+1 < n && data[i+1] == '='
	}
	return false
}

func isWordDotDash(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// window returns the bounded line (or, for multiline rules, lines) around a
// keyword hit at [start, end).
func window(data []byte, start, end int, multiline bool) (int, int) {
	lo := max(0, start-lineBack)
	a := lo
	if i := bytes.LastIndexByte(data[lo:start], '\n'); i >= 0 {
		a = lo + i + 1
	}
	if multiline {
		return a, min(len(data), end+multilineFwd)
	}
	hi := min(len(data), end+lineFwd)
	b := hi
	if i := bytes.IndexByte(data[end:hi], '\n'); i >= 0 {
		b = end + i
	}
	return a, b
}

func (w *Worker) applyRule(r *Rule, path string, data []byte, a, b int, org *origin) {
	win := data[a:b]
	for _, loc := range r.Regex.FindAllSubmatchIndex(win, -1) {
		ms, me := a+loc[0], a+loc[1]
		ss, se := ms, me
		if g := r.SecretGroup; g > 0 {
			if loc[2*g] < 0 {
				continue
			}
			ss, se = a+loc[2*g], a+loc[2*g+1]
		} else {
			for g := 1; 2*g+1 < len(loc); g++ {
				if loc[2*g] >= 0 && loc[2*g+1] > loc[2*g] {
					ss, se = a+loc[2*g], a+loc[2*g+1]
					break
				}
			}
		}
		if se <= ss {
			continue
		}
		w.consider(r, path, data, ms, me, ss, se, org, nameBefore(data[ms:ss]))
	}
}

// applyDetector runs the assignment grammar at a keyword hit.
func (w *Worker) applyDetector(r *Rule, path string, data []byte, start, end int, org *origin) {
	a, ok := parseAssignment(data, start, end, w.code, w.words)
	if !ok || a.meaning != r.Detector || !credibleValue(r.Detector, string(data[a.valStart:a.valEnd]), a.weak) {
		return
	}
	w.consider(r, path, data, a.matchStart, a.end, a.valStart, a.valEnd, org, a.name)
}

// nameBefore returns the name a regex match assigns its secret to: the last
// name-like run before the operator in the match's text before the secret.
func nameBefore(prefix []byte) string {
	e := len(prefix)
	for e > 0 && !isNameByte(prefix[e-1]) {
		e--
	}
	if e == len(prefix) {
		return "" // no operator: the secret starts the match
	}
	if op := prefix[e:]; bytes.ContainsAny(op, "/@") || !bytes.ContainsAny(op, "=:") {
		return "" // user:pass@ in a URL, not name = value
	}
	s := e
	for s > 0 && isNameByte(prefix[s-1]) && e-s < maxNameLen {
		s--
	}
	if s > 0 && (prefix[s-1] == '/' || prefix[s-1] == '@') {
		return ""
	}
	return string(prefix[s:e])
}

func (w *Worker) consider(r *Rule, path string, data []byte, ms, me, ss, se int, org *origin, name string) {
	secretB := data[ss:se]
	confirmed := false
	if r.Checksum != "" {
		if !checksumValidators[r.Checksum](string(secretB)) {
			return
		}
		confirmed = true
	}
	secret := string(secretB)
	var detail string
	if r.Validate == ValidateJWT {
		info, err := DecodeJWT(secret)
		if err != nil {
			return
		}
		detail = info.reason(w.s.now())
	}
	ent := shannonEntropy(secret)
	if r.Entropy > 0 && ent < r.Entropy {
		return
	}
	if !confirmed {
		if isPlaceholder(secret) {
			return
		}
		// Hex values under a key name are keys (the assignment grammar
		// has judged the name); elsewhere they are digests.
		if r.generic && (isUUID(secret) || isHexHash(secret) && r.Detector == "" || isLockFile(path)) {
			return
		}
	}
	// The line for allow markers, bounded like the window.
	lo := max(0, ms-lineBack)
	ls := lo + bytes.LastIndexByte(data[lo:ms], '\n') + 1
	hi := min(len(data), me+lineFwd)
	le := hi
	if i := bytes.IndexByte(data[me:hi], '\n'); i >= 0 {
		le = me + i
	}
	line := data[ls:le]
	if hasAllowMarker(line) {
		return
	}
	if w.allowed(r, path, secret, data[ms:me], line) {
		return
	}
	if org == nil {
		k := seenKey{r, ss, se}
		if w.seen[k] {
			return // the same match reached from two keyword windows
		}
		if w.seen == nil {
			w.seen = map[seenKey]bool{}
		}
		w.seen[k] = true
	}
	var f Finding
	if org != nil {
		f = w.newFinding(r, path, secret, org.line, org.col, org.endLine, org.endCol, ent)
		f.Decoded = org.chain
	} else {
		l, c := w.lineCol(data, ss)
		el, ec := w.lineCol(data, se)
		f = w.newFinding(r, path, secret, l, c, el, ec-1, ent)
	}
	f.Confirmed = confirmed
	f.Detail = detail
	if f.Name = cleanName(name); f.Name != "" && strings.Contains(f.Name, secret) {
		f.Name = "" // never a way around the redaction
	}
	f.detector = r.Detector != ""
	f.commitAllow = w.takePending()
	w.out = append(w.out, f)
}

func (w *Worker) newFinding(r *Rule, path, secret string, l, c, el, ec int, ent float64) Finding {
	return Finding{
		RuleID: r.ID, Description: r.Description, Path: path, Line: l, Column: c, EndLine: el,
		EndColumn: ec, Redacted: Redact(secret), Entropy: roundEntropy(ent), Tags: r.Tags,
		Fingerprint: fingerprint(r.ID, path, secret), secret: secret, generic: r.generic, Shape: Shape(secret),
	}
}

// cleanName keeps a reported name printable and short: it comes from the
// scanned content.
func cleanName(name string) string {
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] >= 0x7f {
			return ""
		}
	}
	return name
}

func roundEntropy(e float64) float64 { return float64(int(e*1000+0.5)) / 1000 }

// fingerprint identifies a finding across scans (for baselines) without the
// secret being recoverable from it by anyone without the secret.
func fingerprint(ruleID, path, secret string) string {
	h := sha256.New()
	h.Write([]byte(ruleID))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// lineCol converts a byte offset into a 1-based line and column, moving a
// cursor both ways so the cost is the distance moved, not the offset.
func (w *Worker) lineCol(data []byte, off int) (int, int) {
	if w.lcData == nil || &w.lcData[0] != &data[0] {
		w.lcData, w.lcOff, w.lcLine, w.lcLineStart = data, 0, 1, 0
	}
	switch {
	case off > w.lcOff:
		seg := data[w.lcOff:off]
		if n := bytes.Count(seg, []byte{'\n'}); n > 0 {
			w.lcLine += n
			w.lcLineStart = w.lcOff + bytes.LastIndexByte(seg, '\n') + 1
		}
	case off < w.lcOff:
		if n := bytes.Count(data[off:w.lcOff], []byte{'\n'}); n > 0 {
			w.lcLine -= n
			w.lcLineStart = bytes.LastIndexByte(data[:off], '\n') + 1
		}
	}
	w.lcOff = off
	return w.lcLine, off - w.lcLineStart + 1
}

// allowed reports whether an allowlist (the rule's, then a global one)
// suppresses a finding. The commit is not known while scanning: an AND
// allowlist with commits whose other checks match goes to w.pending, for
// the caller to keep on the finding (takePending) and ScanGit to decide.
func (w *Worker) allowed(r *Rule, path, secret string, match, line []byte) bool {
	w.pending = w.pending[:0]
	for _, al := range r.Allowlists {
		if w.allowedBy(al, path, secret, match, line) {
			return true
		}
	}
	for _, al := range w.s.allow {
		if len(al.TargetRules) > 0 && !containsString(al.TargetRules, r.ID) {
			continue
		}
		if w.allowedBy(al, path, secret, match, line) {
			return true
		}
	}
	return false
}

func (w *Worker) allowedBy(al *Allowlist, path, secret string, match, line []byte) bool {
	ok, needCommit := al.matches(path, secret, match, line)
	if needCommit {
		w.pending = append(w.pending, al)
	}
	return ok
}

// takePending returns a copy of what the last allowed call left pending.
func (w *Worker) takePending() []*Allowlist {
	if len(w.pending) == 0 {
		return nil
	}
	return append([]*Allowlist(nil), w.pending...)
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// matches reports whether al's checks other than commits suppress a finding,
// or, for an AND allowlist with commits, whether they would if the finding's
// commit is listed (needCommit). Commits are checked after history
// attribution: Scanner.attribute.
func (al *Allowlist) matches(path, secret string, match, line []byte) (suppress, needCommit bool) {
	type check struct{ set, ok bool }
	var checks [3]check
	if len(al.Paths) > 0 {
		ok := false
		for _, re := range al.Paths {
			if re.MatchString(path) {
				ok = true
				break
			}
		}
		checks[0] = check{true, ok}
	}
	if len(al.Regexes) > 0 {
		target := []byte(secret)
		switch al.RegexTarget {
		case TargetMatch:
			target = match
		case TargetLine:
			target = line
		}
		ok := false
		for _, re := range al.Regexes {
			if re.Match(target) {
				ok = true
				break
			}
		}
		checks[1] = check{true, ok}
	}
	if len(al.Stopwords) > 0 {
		lower := strings.ToLower(secret)
		ok := false
		for _, sw := range al.Stopwords {
			if strings.Contains(lower, sw) {
				ok = true
				break
			}
		}
		checks[2] = check{true, ok}
	}
	if al.Condition == "AND" {
		any := false
		for _, c := range checks {
			if c.set {
				any = true
				if !c.ok {
					return false, false
				}
			}
		}
		if len(al.Commits) > 0 {
			return false, true
		}
		return any, false
	}
	for _, c := range checks {
		if c.set && c.ok {
			return true, false
		}
	}
	return false, false
}

// dropShadowedGeneric removes generic findings whose secret overlaps a
// finding of a specific rule on the same line: the specific one says more.
func dropShadowedGeneric(fs []Finding) []Finding {
	if len(fs) < 2 {
		return fs
	}
	type lineKey struct{ line int }
	// byLine indexes the findings that pass keep by line.
	byLine := func(keep func(*Finding) bool) map[lineKey][]int {
		var m map[lineKey][]int
		for i := range fs {
			if keep(&fs[i]) {
				if m == nil {
					m = map[lineKey][]int{}
				}
				k := lineKey{fs[i].Line}
				m[k] = append(m[k], i)
			}
		}
		return m
	}
	// A path-only finding has no secret and shadows nothing; a managed one
	// does not keep its secret and shadows what overlaps it (sameValue).
	hasValue := func(f *Finding) bool { return f.secret != "" || f.ManagedSecret != "" }
	specific := byLine(func(f *Finding) bool { return !f.generic && hasValue(f) })
	others := byLine(func(f *Finding) bool { return !f.detector && hasValue(f) }) // not made by the assignment grammar
	sameValue := func(g, f *Finding) bool {
		if g.Decoded != f.Decoded {
			return false
		}
		if g.secret == "" { // managed: by position
			return g.Column <= f.EndColumn && f.Column <= g.EndColumn
		}
		return strings.Contains(g.secret, f.secret) || strings.Contains(f.secret, g.secret)
	}
	if specific == nil && others == nil {
		return fs
	}
	// A new slice: the loop reads fs[j] for any j while it appends.
	out := make([]Finding, 0, len(fs))
	for i := range fs {
		f := fs[i]
		if f.detector {
			dup := false
			for _, j := range others[lineKey{f.Line}] {
				g := &fs[j]
				if sameValue(g, &f) {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
		}
		if f.generic {
			shadowed := false
			for _, j := range specific[lineKey{f.Line}] {
				g := &fs[j]
				// A generic match of an encoded run is shadowed by what its
				// decoding revealed.
				sameLayer := sameValue(g, &f)
				decodedHere := g.Decoded != "" && f.Decoded == "" && g.Column <= f.EndColumn && f.Column <= g.EndColumn
				if sameLayer || decodedHere {
					shadowed = true
					break
				}
			}
			if shadowed {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// SortFindings orders findings by path, line, column, rule and commit so
// every report is deterministic.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		switch {
		case a.Path != b.Path:
			return a.Path < b.Path
		case a.Line != b.Line:
			return a.Line < b.Line
		case a.Column != b.Column:
			return a.Column < b.Column
		case a.RuleID != b.RuleID:
			return a.RuleID < b.RuleID
		case a.Decoded != b.Decoded:
			return a.Decoded < b.Decoded
		}
		return a.Commit < b.Commit
	})
}

// String describes a finding without its secret.
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d:%d: %s %s", f.Path, f.Line, f.Column, f.RuleID, f.Redacted)
}
