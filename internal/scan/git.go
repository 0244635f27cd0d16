package scan

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GitOptions select what ScanGit reads.
type GitOptions struct {
	// Since limits the scan to objects not reachable from this revision.
	Since string
	// Git is the git binary; "" means "git" from PATH.
	Git string
}

// introduction is where a blob first appeared at one path.
type introduction struct {
	path, commit, author, email string
	date                        time.Time
}

func (o GitOptions) git() string {
	if o.Git == "" {
		return "git"
	}
	return o.Git
}

func gitOutput(ctx context.Context, bin, repo string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"-C", repo}, args...)...) // #nosec G204 -- runs git with argv (no shell); revisions are passed after --end-of-options or validated
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(firstLine(stderr.String())))
	}
	return out, nil
}

// resolveSince checks and resolves a --since revision to a commit id.
func resolveSince(ctx context.Context, bin, repo, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") || strings.ContainsAny(rev, "\x00\n") {
		return "", fmt.Errorf("invalid revision %q", rev)
	}
	out, err := gitOutput(ctx, bin, repo, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("unknown revision %q", rev)
	}
	return strings.TrimSpace(string(out)), nil
}

// ScanGit scans every unique blob reachable from any ref of the repository
// at repo, reading each once through `git cat-file --batch`, and attributes
// each finding to the first commit that introduced its blob at each path.
func (s *Scanner) ScanGit(ctx context.Context, repo string, opts GitOptions, stats *Stats) ([]Finding, error) {
	if stats == nil {
		stats = &Stats{}
	}
	bin := opts.git()
	var not []string
	if opts.Since != "" {
		id, err := resolveSince(ctx, bin, repo, opts.Since)
		if err != nil {
			return nil, err
		}
		not = []string{"--not", id}
	}
	// Attribution (git log) runs while the blobs are read and scanned.
	type introResult struct {
		m   map[string][]introduction
		err error
	}
	introCh := make(chan introResult, 1)
	go func() {
		m, err := s.gitIntroductions(ctx, bin, repo, not)
		introCh <- introResult{m, err}
	}()
	args := append([]string{"rev-list", "--objects", "--all",
		fmt.Sprintf("--filter=combine:object:type=blob+blob:limit=%d", s.opts.MaxFileSize)}, not...)
	list, err := gitOutput(ctx, bin, repo, args...)
	if err != nil {
		<-introCh
		return nil, err
	}
	var names, paths []string
	for _, line := range bytes.Split(list, []byte{'\n'}) {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			continue // a commit (or an object without a path)
		}
		names = append(names, string(line[:sp]))
		paths = append(paths, string(line[sp+1:]))
	}
	type blobFinding struct {
		blob string
		f    Finding
	}
	var raw []blobFinding
	emit := func(it Item, f Finding) { raw = append(raw, blobFinding{it.Blob, f}) }
	if err := s.catFile(ctx, bin, repo, names, paths, nil, true, stats, emit); err != nil {
		<-introCh
		return nil, err
	}
	ir := <-introCh
	if ir.err != nil {
		return nil, ir.err
	}
	// Each blob was scanned once, as the one path rev-list gave it, but
	// what a path decides (allowlisted paths, rules limited to paths, test
	// files, lock files) must be decided at every path the blob was added
	// at: scan it again as one path of each other class.
	classes := map[string]string{}
	class := func(p string) string {
		c, ok := classes[p]
		if !ok {
			c = s.pathClass(p)
			classes[p] = c
		}
		return c
	}
	type blobClass struct{ blob, class string }
	found := map[blobClass][]Finding{}
	for _, bf := range raw {
		k := blobClass{bf.blob, class(bf.f.Path)}
		found[k] = append(found[k], bf.f)
	}
	var names2, paths2 []string
	queued := map[blobClass]bool{}
	for i, blob := range names {
		queued[blobClass{blob, class(paths[i])}] = true
	}
	for _, blob := range names {
		for _, in := range ir.m[blob] {
			k := blobClass{blob, class(in.path)}
			if !queued[k] {
				queued[k] = true
				names2 = append(names2, blob)
				paths2 = append(paths2, in.path)
			}
		}
	}
	emit2 := func(it Item, f Finding) {
		k := blobClass{it.Blob, class(it.Path)}
		found[k] = append(found[k], f)
	}
	if err := s.catFile(ctx, bin, repo, names2, paths2, nil, true, &Stats{}, emit2); err != nil {
		return nil, err
	}
	// A finding is hidden behind another of its value only once commit
	// allowlists have had their say: the other must be reported.
	var out []Finding
	for i, blob := range names {
		if len(ir.m[blob]) == 0 { // no commit to attribute it to
			out = append(out, dropShadowedGeneric(found[blobClass{blob, class(paths[i])}])...)
		}
		for _, in := range ir.m[blob] {
			var fs []Finding
			for _, f := range found[blobClass{blob, class(in.path)}] {
				if g, ok := s.attribute(f, in); ok {
					fs = append(fs, g)
				}
			}
			out = append(out, dropShadowedGeneric(fs)...)
		}
	}
	SortFindings(out)
	return dedupe(out), nil
}

// pathClass sums up every decision the engine takes on a path alone, so two
// paths of one class give the same findings for the same content.
func (s *Scanner) pathClass(p string) string {
	b := make([]byte, 0, 16)
	bit := func(v bool) {
		if v {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	bit(isCodePath(p))
	bit(isTestPath(p))
	bit(isLockFile(p))
	paths := func(als []*Allowlist) {
		for _, al := range als {
			for _, re := range al.Paths {
				bit(re.MatchString(p))
			}
		}
	}
	for _, r := range s.rules {
		if r.Path != nil {
			bit(r.Path.MatchString(p))
		}
		paths(r.Allowlists)
	}
	paths(s.allow)
	return string(b)
}

// attribute gives a finding in a blob the path and commit that added it;
// false when an allowlist lists that commit (an OR one, or an AND one whose
// other checks matched while scanning).
func (s *Scanner) attribute(f Finding, in introduction) (Finding, bool) {
	f.Path = in.path
	f.Commit, f.Author, f.Email, f.Date = in.commit, in.author, in.email, in.date
	if f.RuleID == ManagedRuleID {
		f.Fingerprint = fingerprint(ManagedRuleID, in.path, f.ManagedSecret)
	} else {
		f.Fingerprint = fingerprint(f.RuleID, in.path, f.secret)
	}
	for _, al := range f.commitAllow {
		if containsString(al.Commits, f.Commit) {
			return f, false
		}
	}
	return f, !s.commitAllowed(f.RuleID, f.Commit)
}

// commitAllowed reports whether an OR allowlist (the rule's or a global one)
// lists commit: commits are known only after attribution.
func (s *Scanner) commitAllowed(ruleID, commit string) bool {
	check := func(als []*Allowlist) bool {
		for _, al := range als {
			if al.Condition != "OR" || len(al.TargetRules) > 0 && !containsString(al.TargetRules, ruleID) {
				continue
			}
			if containsString(al.Commits, commit) {
				return true
			}
		}
		return false
	}
	for _, r := range s.rules {
		if r.ID == ruleID && check(r.Allowlists) {
			return true
		}
	}
	return check(s.allow)
}

func dedupe(fs []Finding) []Finding {
	if len(fs) < 2 {
		return fs
	}
	out := fs[:1]
	for _, f := range fs[1:] {
		p := &out[len(out)-1]
		if p.Path == f.Path && p.Line == f.Line && p.Column == f.Column && p.RuleID == f.RuleID &&
			p.Commit == f.Commit && p.Decoded == f.Decoded {
			continue
		}
		out = append(out, f)
	}
	return out
}

// gitIntroductions maps blob id → the (path, first commit) pairs that added
// it, from one `git log --raw` over all refs.
func (s *Scanner) gitIntroductions(ctx context.Context, bin, repo string, not []string) (map[string][]introduction, error) {
	// -c adds merge commits' combined raw diffs: the blobs a merge
	// resolution introduced (differing from every parent).
	args := append([]string{"log", "--all", "--raw", "-c", "--no-abbrev", "--no-renames", "--no-color",
		"--format=%x01%H%x00%an%x00%ae%x00%aI"}, not...)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-C", repo}, args...)...) // #nosec G204 -- runs git with argv (no shell)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git log: %w", err)
	}
	intro := map[string][]introduction{}
	var cur introduction
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "\x01") {
			parts := strings.SplitN(line[1:], "\x00", 4)
			if len(parts) == 4 {
				cur = introduction{commit: parts[0], author: parts[1], email: parts[2]}
				cur.date, _ = time.Parse(time.RFC3339, parts[3])
			}
			continue
		}
		if !strings.HasPrefix(line, ":") {
			continue
		}
		tab := strings.IndexByte(line, '\t')
		if tab < 0 {
			continue
		}
		// ":mode mode sha sha status" for one parent, "::mode mode mode sha
		// sha sha status" for a two-parent merge, and so on.
		np := len(line) - len(strings.TrimLeft(line, ":"))
		f := strings.Fields(line[np:tab])
		if len(f) != 2*(np+1)+1 {
			continue
		}
		newID := f[2*(np+1)-1]
		if strings.Trim(newID, "0") == "" || strings.Contains(f[len(f)-1], "D") {
			continue
		}
		p := line[tab+1:]
		if strings.HasPrefix(p, `"`) {
			if u, err := strconv.Unquote(p); err == nil {
				p = u
			}
		}
		in := cur
		in.path = p
		list := intro[newID]
		replaced := false
		for i := range list {
			if list[i].path == p { // log runs newest first: the older one wins
				list[i] = in
				replaced = true
			}
		}
		if !replaced {
			list = append(list, in)
		}
		intro[newID] = list
	}
	if err := sc.Err(); err != nil {
		_ = cmd.Wait()
		return nil, fmt.Errorf("git log: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git log: %w: %s", err, strings.TrimSpace(firstLine(stderr.String())))
	}
	return intro, nil
}

// catFile reads the named objects through one `git cat-file --batch` and
// scans each blob as paths[i]. lines, when set, limits findings per index.
// unattributed keeps the findings one blob's scan would hide behind others:
// the caller hides them after attribution.
func (s *Scanner) catFile(ctx context.Context, bin, repo string, names, paths []string, lines []LineSet,
	unattributed bool, stats *Stats, emit func(Item, Finding)) error {
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-C", repo, "cat-file", "--batch") // #nosec G204 -- runs git with argv (no shell)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	go func() {
		bw := bufio.NewWriter(stdin)
		for _, n := range names {
			bw.WriteString(n)
			bw.WriteByte('\n')
		}
		bw.Flush()
		stdin.Close()
	}()
	in := make(chan Item, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.run(ctx, in, stats, emit)
	}()
	readErr := func() error {
		br := bufio.NewReaderSize(stdout, 256<<10)
		for i := range names {
			header, err := br.ReadString('\n')
			if err != nil {
				return fmt.Errorf("git cat-file: reading object %d of %d: %w", i+1, len(names), err)
			}
			f := strings.Fields(header)
			if len(f) == 2 && f[1] == "missing" {
				continue
			}
			if len(f) != 3 {
				return fmt.Errorf("git cat-file: unexpected header %q", firstLine(header))
			}
			size, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || size < 0 {
				return fmt.Errorf("git cat-file: bad size in header %q", firstLine(header))
			}
			if f[1] != "blob" || size > s.opts.MaxFileSize {
				if _, err := io.CopyN(io.Discard, br, size+1); err != nil {
					return fmt.Errorf("git cat-file: %w", err)
				}
				stats.Skipped.Add(1)
				continue
			}
			bp := bufPool.Get().(*[]byte)
			buf := *bp
			if int64(cap(buf)) < size+1 {
				buf = make([]byte, size+1)
			}
			buf = buf[:size+1]
			if _, err := io.ReadFull(br, buf); err != nil {
				bufPool.Put(bp)
				return fmt.Errorf("git cat-file: %w", err)
			}
			*bp = buf
			it := Item{Path: paths[i], Data: buf[:size], Blob: f[0], unattributed: unattributed, done: func() { bufPool.Put(bp) }}
			if lines != nil {
				it.Lines = lines[i]
			}
			select {
			case in <- it:
			case <-ctx.Done():
				bufPool.Put(bp)
				return ctx.Err()
			}
		}
		return nil
	}()
	close(in)
	wg.Wait()
	if readErr != nil {
		cancel()
		_ = cmd.Wait()
		return readErr
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git cat-file: %w: %s", err, strings.TrimSpace(firstLine(stderr.String())))
	}
	return nil
}

// ScanStaged scans what `git commit` would record: the staged content of
// every added, copied, modified, renamed or type-changed file (a symlink
// made a regular file), reporting findings on the
// lines the index adds relative to HEAD only (on every line of a file git
// diffs as binary, such as UTF-16 text).
func (s *Scanner) ScanStaged(ctx context.Context, repo string, opts GitOptions, stats *Stats) ([]Finding, error) {
	if stats == nil {
		stats = &Stats{}
	}
	bin := opts.git()
	diff, err := gitOutput(ctx, bin, repo, "diff", "--cached", "--no-color", "--no-ext-diff", "-U0",
		"--diff-filter=ACMRT", "--src-prefix=a/", "--dst-prefix=b/", "--no-renames", "--full-index")
	if err != nil {
		return nil, err
	}
	added, order, blobs := parseStagedDiff(diff)
	names := make([]string, len(order))
	lines := make([]LineSet, len(order))
	for i, p := range order {
		// The staged blob by id: a path may hold a newline, which the
		// line-based cat-file protocol cannot carry.
		names[i] = blobs[p]
		if names[i] == "" {
			names[i] = ":" + p
		}
		lines[i] = added[p]
	}
	var out []Finding
	emit := func(_ Item, f Finding) { out = append(out, f) }
	if err := s.catFile(ctx, bin, repo, names, order, lines, false, stats, emit); err != nil {
		return nil, err
	}
	SortFindings(out)
	return out, nil
}

// parseAddedLines reads a -U0 unified diff and returns, per new path, the
// line numbers it adds, and the paths in diff order.
func parseAddedLines(diff []byte) (map[string]LineSet, []string) {
	added, order, _ := parseStagedDiff(diff)
	return added, order
}

// parseStagedDiff is parseAddedLines that also returns, per new path, the
// new blob id from the diff's "index OLD..NEW" line (with --full-index). A
// binary file's lines are nil: all of them.
//
// Headers are read only between hunks: each hunk's header says how many old
// and new lines it holds, and until they are all read every line is content
// whatever it starts with (an added line "++ b/x" shows as "+++ b/x").
func parseStagedDiff(diff []byte) (map[string]LineSet, []string, map[string]string) {
	added := map[string]LineSet{}
	blobs := map[string]string{}
	var order []string
	var cur, blob string
	var oldLeft, newLeft, newLine int // the current hunk's unread lines; the next new line's number
	for _, line := range strings.Split(string(diff), "\n") {
		if oldLeft > 0 || newLeft > 0 {
			c := byte(0)
			if line != "" {
				c = line[0]
			}
			switch {
			case c == '+' && newLeft > 0:
				newLeft--
				if cur != "" && added[cur] != nil {
					ls := added[cur]
					if n := len(ls); n > 0 && ls[n-1][1] == newLine-1 {
						ls[n-1][1] = newLine
					} else {
						added[cur] = append(ls, [2]int{newLine, newLine})
					}
				}
				newLine++
				continue
			case c == '-' && oldLeft > 0:
				oldLeft--
				continue
			case (c == ' ' || line == "") && oldLeft > 0 && newLeft > 0:
				// A context line; diff.suppressBlankEmpty prints a blank
				// one as "". (-U0 asks for none.)
				oldLeft--
				newLeft--
				newLine++
				continue
			case c == '\\': // "\ No newline at end of file"
				continue
			}
			// Not what the hunk announced: git wrote no such diff, so the
			// hunk is over and this line is read as a header.
			oldLeft, newLeft = 0, 0
		}
		switch {
		case strings.HasPrefix(line, "diff "):
			cur, blob = "", ""
		case strings.HasPrefix(line, "index "):
			blob = ""
			f := strings.Fields(line)
			if len(f) >= 2 {
				if _, id, ok := strings.Cut(f[1], ".."); ok && isObjectID(id) {
					blob = id
				}
			}
		case strings.HasPrefix(line, "+++ "):
			// git ends the name with a tab when it holds a space; a real
			// tab in a name is quoted.
			p := strings.TrimSuffix(strings.TrimPrefix(line, "+++ "), "\t")
			if strings.HasPrefix(p, `"`) {
				if u, err := strconv.Unquote(p); err == nil {
					p = u
				}
			}
			if p == "/dev/null" {
				cur = ""
				continue
			}
			cur = strings.TrimPrefix(p, "b/")
			if _, ok := added[cur]; !ok {
				added[cur] = LineSet{}
				order = append(order, cur)
			}
			if blob != "" {
				blobs[cur] = blob
			}
		case strings.HasPrefix(line, "Binary files ") && strings.HasSuffix(line, " differ"):
			// No hunks for a file git takes for binary (UTF-16 among
			// them): it is scanned whole (nil: every line), and the
			// scanner decides what is text.
			cur = ""
			p, ok := binaryDiffPath(line[len("Binary files ") : len(line)-len(" differ")])
			if !ok {
				continue
			}
			if _, ok := added[p]; !ok {
				order = append(order, p)
			}
			added[p] = nil
			if blob != "" {
				blobs[p] = blob
			}
		case strings.HasPrefix(line, "@@ "):
			// Counted even without a current file (a deleted one), so
			// its lines are not read as headers either.
			if o, start, n, ok := parseHunk(line); ok {
				oldLeft, newLeft, newLine = o, n, start
			}
		}
	}
	return added, order, blobs
}

// binaryDiffPath returns the new path of "OLD and NEW" from git's "Binary
// files OLD and NEW differ", where OLD is /dev/null or, without renames, the
// same name as NEW with prefix a/ instead of b/, both quoted or neither.
func binaryDiffPath(s string) (string, bool) {
	var name string
	switch {
	case strings.HasPrefix(s, "/dev/null and "):
		name = s[len("/dev/null and "):]
	case strings.HasPrefix(s, `"`):
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", false
		}
		rest, ok := strings.CutPrefix(s[len(q):], " and ")
		if !ok {
			return "", false
		}
		name = rest
	default:
		// "a/P and b/P": a name may hold " and b/", so split by length.
		n := (len(s) - len("a/ and b/")) / 2
		if n <= 0 || !strings.HasPrefix(s, "a/") || s[2+n:] != " and b/"+s[2:2+n] {
			return "", false
		}
		name = s[len(s)-n-2:]
	}
	if strings.HasPrefix(name, `"`) {
		u, err := strconv.Unquote(name)
		if err != nil {
			return "", false
		}
		name = u
	}
	p, ok := strings.CutPrefix(name, "b/")
	return p, ok && p != ""
}

// isObjectID reports whether s is a full SHA-1 or SHA-256 object id other
// than the null id.
func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 || strings.Trim(s, "0") == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) || s[i] >= 'A' && s[i] <= 'F' {
			return false
		}
	}
	return true
}

// parseHunk parses "@@ -a,b +c,d @@" (a count of 1 may be left out) into
// the old count b, the new start c and the new count d.
func parseHunk(h string) (oldCount, newStart, newCount int, ok bool) {
	rest, ok := strings.CutPrefix(h, "@@ -")
	if !ok {
		return 0, 0, 0, false
	}
	old, rest, ok := strings.Cut(rest, " +")
	if !ok {
		return 0, 0, 0, false
	}
	nw, _, ok := strings.Cut(rest, " @@")
	if !ok {
		return 0, 0, 0, false
	}
	_, oldCount, ok = parseRange(old)
	if !ok {
		return 0, 0, 0, false
	}
	newStart, newCount, ok = parseRange(nw)
	return oldCount, newStart, newCount, ok
}

// parseRange parses "start[,count]" of a hunk header.
func parseRange(s string) (start, count int, ok bool) {
	count = 1
	if a, b, found := strings.Cut(s, ","); found {
		n, err := strconv.Atoi(b)
		if err != nil || n < 0 || b[0] == '+' || b[0] == '-' {
			return 0, 0, false
		}
		count, s = n, a
	}
	start, err := strconv.Atoi(s)
	if err != nil || start < 0 || s[0] == '+' || s[0] == '-' {
		return 0, 0, false
	}
	return start, count, true
}
