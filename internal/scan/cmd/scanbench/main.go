// Command scanbench measures the leak scanner's throughput on a directory
// tree or a generated git history, beside grep on the same data in the same
// run, so the numbers compare like with like on one machine.
//
//	go run ./internal/scan/cmd/scanbench -tree "$(go env GOROOT)/src"
//	go run ./internal/scan/cmd/scanbench -git -commits 3000
//
// -rules DIR also times the rule files in DIR (e.g. a copy of the rules
// before a change) on the same tree, alternating runs with the built-in
// set, so a before/after comparison shares one machine state.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"

	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenward/tokenward/internal/scan"
	"github.com/tokenward/tokenward/internal/scan/rules"
)

// grepGeneric is one generic key=value regex, the usual grep baseline.
const grepGeneric = `(key|token|secret|password)[[:space:]]*[:=][[:space:]]*['"]?[A-Za-z0-9/+=_-]{16,}`

func main() {
	tree := flag.String("tree", "", "benchmark on this directory tree")
	gitMode := flag.Bool("git", false, "benchmark on a generated git history")
	commits := flag.Int("commits", 3000, "commits in the generated history")
	repo := flag.String("repo", "", "with -git: use this existing repository instead of generating one")
	runs := flag.Int("runs", 3, "timed runs of each tool (the best is reported)")
	other := flag.String("rules", "", "with -tree: also time the rule files (*.toml) in this directory, alternating with the built-in set")
	flag.Parse()
	if err := run(*tree, *gitMode, *repo, *commits, *runs, *other); err != nil {
		fmt.Fprintln(os.Stderr, "scanbench:", err)
		os.Exit(1)
	}
}

func run(tree string, gitMode bool, repo string, commits, runs int, other string) error {
	cfg, err := scan.LoadFS(rules.FS)
	if err != nil {
		return err
	}
	s, err := scan.New(cfg, scan.Options{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch {
	case tree != "":
		var bytes int64
		var findings int
		scanTree := func(s *scan.Scanner, n *int) func() {
			return func() {
				st := &scan.Stats{}
				fs, err := s.ScanDir(ctx, tree, st)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				bytes, *n = st.Bytes.Load(), len(fs)
			}
		}
		if other != "" {
			ocfg, err := scan.LoadFS(os.DirFS(other))
			if err != nil {
				return fmt.Errorf("-rules %s: %w", other, err)
			}
			os2, err := scan.New(ocfg, scan.Options{})
			if err != nil {
				return err
			}
			var ofindings int
			tb, to := bestPair(runs, scanTree(s, &findings), scanTree(os2, &ofindings))
			mb := float64(bytes) / 1e6
			fmt.Printf("tree %s: %.1f MB, runs alternated\n", tree, mb)
			fmt.Printf("  built-in rules (%d)  : %8.3fs %8.1f MB/s  %d findings\n", len(cfg.Rules), tb.Seconds(), mb/tb.Seconds(), findings)
			fmt.Printf("  %s (%d) : %8.3fs %8.1f MB/s  %d findings\n", other, len(ocfg.Rules), to.Seconds(), mb/to.Seconds(), ofindings)
			return nil
		}
		tw := best(runs, scanTree(s, &findings))
		gf := best(runs, func() { _ = exec.Command("grep", "-rF", "-c", "AKIA", tree).Run() })      // #nosec G204 -- a benchmark runs its fixed baseline commands on the tree its operator names
		ge := best(runs, func() { _ = exec.Command("grep", "-rE", "-c", grepGeneric, tree).Run() }) // #nosec G204 -- a benchmark runs its fixed baseline commands on the tree its operator names
		report(fmt.Sprintf("tree %s (%d rules, %d findings)", tree, len(cfg.Rules), findings), bytes, tw, gf, ge)
	case gitMode:
		if repo == "" {
			dir, err := os.MkdirTemp("", "scanbench-git-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			fmt.Printf("generating %d commits in %s...\n", commits, dir)
			if err := generateHistory(dir, commits); err != nil {
				return err
			}
			repo = dir
		}
		var bytes int64
		var findings int
		tw := best(runs, func() {
			st := &scan.Stats{}
			fs, err := s.ScanGit(ctx, repo, scan.GitOptions{}, st)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			bytes, findings = st.Bytes.Load(), len(fs)
		})
		// grep reads the same blobs through the same git plumbing.
		catGrep := func(args ...string) func() {
			return func() {
				sh := "git -C " + shellQuote(repo) + " cat-file --batch-all-objects --batch | grep " + strings.Join(args, " ") + " >/dev/null"
				_ = exec.Command("sh", "-c", sh).Run() // #nosec G204 -- a benchmark runs its fixed baseline commands on the tree its operator names
			}
		}
		gf := best(runs, catGrep("-cF", "AKIA"))
		ge := best(runs, catGrep("-cE", shellQuote(grepGeneric)))
		report(fmt.Sprintf("git history %s (%d findings)", repo, findings), bytes, tw, gf, ge)
	default:
		return fmt.Errorf("give -tree DIR or -git")
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func best(n int, f func()) time.Duration {
	f() // warm the page cache
	var b time.Duration
	for i := 0; i < n; i++ {
		t := time.Now()
		f()
		if d := time.Since(t); b == 0 || d < b {
			b = d
		}
	}
	return b
}

// bestPair times a and b alternately, n runs each after a warm-up of
// both, and returns the best time of each.
func bestPair(n int, a, b func()) (time.Duration, time.Duration) {
	a()
	b()
	var ba, bb time.Duration
	for i := 0; i < n; i++ {
		for _, x := range []struct {
			f    func()
			best *time.Duration
		}{{a, &ba}, {b, &bb}} {
			t := time.Now()
			x.f()
			if d := time.Since(t); *x.best == 0 || d < *x.best {
				*x.best = d
			}
		}
	}
	return ba, bb
}

func report(what string, bytes int64, tw, gf, ge time.Duration) {
	mb := float64(bytes) / 1e6
	rate := func(d time.Duration) float64 { return mb / d.Seconds() }
	fmt.Printf("%s: %.1f MB\n", what, mb)
	fmt.Printf("  tokenward scan : %8.3fs %8.1f MB/s\n", tw.Seconds(), rate(tw))
	fmt.Printf("  grep -rF       : %8.3fs %8.1f MB/s  (tokenward takes %.1fx grep -rF's time)\n", gf.Seconds(), rate(gf), tw.Seconds()/gf.Seconds())
	fmt.Printf("  grep -rE       : %8.3fs %8.1f MB/s  (tokenward takes %.1fx grep -rE's time)\n", ge.Seconds(), rate(ge), tw.Seconds()/ge.Seconds())
}

// generateHistory writes a repository of n commits through git fast-import:
// source-like files edited over time, a few with credentials.
func generateHistory(dir string, n int) error {
	if out, err := exec.Command("git", "init", "-q", dir).CombinedOutput(); err != nil { // #nosec G204 -- a benchmark runs its fixed baseline commands on the tree its operator names
		return fmt.Errorf("git init: %v: %s", err, out)
	}
	cmd := exec.Command("git", "-C", dir, "fast-import", "--quiet") // #nosec G204 -- a benchmark runs its fixed baseline commands on the tree its operator names
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriter(in)
	r := rand.New(rand.NewPCG(1, 2)) // #nosec G404 -- benchmark input, not a secret
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "commit refs/heads/main\nauthor Dev %d <dev%d@example.org> %d +0000\ncommitter Dev <dev@example.org> %d +0000\n",
			i%17, i%17, 1700000000+i*60, 1700000000+i*60)
		msg := fmt.Sprintf("change %d", i)
		fmt.Fprintf(w, "data %d\n%s\n", len(msg), msg)
		for f := 0; f < 3; f++ {
			path := filepath.ToSlash(filepath.Join(fmt.Sprintf("pkg%d", r.IntN(40)), fmt.Sprintf("file%d.go", r.IntN(60))))
			content := sourceFile(r, i)
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", path, len(content), content)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	in.Close()
	return cmd.Wait()
}

func sourceFile(r *rand.Rand, i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "package p\n\n// Revision %d.\n", i)
	for l := 0; l < 80+r.IntN(80); l++ {
		fmt.Fprintf(&b, "func f%d(x int) int { return x*%d + %d } // keep the compiler busy\n", l, r.IntN(1000), r.IntN(1000))
	}
	if i%100 == 0 {
		fmt.Fprintf(&b, "const awsKey = \"AKIA%s\"\n", randUpper(r, 16))
	}
	return b.String()
}

func randUpper(r *rand.Rand, n int) string {
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	out := make([]byte, n)
	for i := range out {
		out[i] = a[r.IntN(len(a))]
	}
	return string(out)
}
