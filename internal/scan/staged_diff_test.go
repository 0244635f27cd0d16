package scan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Inside a hunk every line is content whatever it starts with: an added line
// "++ b/vendor/x" shows as "+++ b/vendor/x" in the diff and must not start a
// new file (it moved the key of a later hunk to an allowlisted path: a way
// past the pre-commit hook).
func TestStagedHeaderLikeContent(t *testing.T) {
	s := MustTestScanner(t, Options{})
	key := "aws_access_key_id = " + reviewKey1
	lines := func(n int) []string {
		var out []string
		for i := 1; i <= n; i++ {
			out = append(out, "line "+strconv.Itoa(i))
		}
		return out
	}
	join := func(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
	// insert returns base with text put before base's line at (0-based).
	insert := func(base []string, at int, text ...string) []string {
		return slices.Concat(base[:at], text, base[at:])
	}
	base := lines(8)
	for _, tt := range []struct {
		name   string
		before map[string]string // committed; "" path content means none
		after  map[string]string // staged; "" deletes
		chmod  string            // a file staged as executable
		want   []string
	}{
		{"added ++ b/x then key in a later hunk",
			map[string]string{"app.env": join(base...)},
			map[string]string{"app.env": join(insert(insert(base, 6, key), 1, "++ b/x")...)},
			"", []string{"app.env:8:aws-access-key-id"}},
		{"added ++ b/vendor/x then key in a later hunk",
			map[string]string{"app.env": join(base...)},
			map[string]string{"app.env": join(insert(insert(base, 6, key), 1, "++ b/vendor/x")...)},
			"", []string{"app.env:8:aws-access-key-id"}},
		{"added quoted ++ header then key",
			map[string]string{"app.env": join(base...)},
			map[string]string{"app.env": join(insert(insert(base, 6, key), 1, `++ "b/vendor/x"`)...)},
			"", []string{"app.env:8:aws-access-key-id"}},
		{"added ++ /dev/null then key",
			map[string]string{"app.env": join(base...)},
			map[string]string{"app.env": join(insert(insert(base, 6, key), 1, "++ /dev/null")...)},
			"", []string{"app.env:8:aws-access-key-id"}},
		{"removed -- a/vendor/x then key",
			map[string]string{"app.env": join(insert(base, 1, "-- a/vendor/x")...)},
			map[string]string{"app.env": join(insert(base, 6, key)...)},
			"", []string{"app.env:7:aws-access-key-id"}},
		{"added header-like lines in one hunk, then key",
			map[string]string{"app.env": join(base...)},
			map[string]string{"app.env": join(insert(insert(base, 6, key), 1,
				"++ b/vendor/x", "-- a/vendor/x", "diff --git a/vendor/x b/vendor/x", "@@ -1 +1,100 @@",
				`\ No newline at end of file`, "Binary files a/vendor/x and b/vendor/x differ",
				"index 0000000000000000000000000000000000000001..0000000000000000000000000000000000000002")...)},
			"", []string{"app.env:14:aws-access-key-id"}},
		{"new file, header-like first line, key later",
			nil,
			map[string]string{"new.env": join("++ b/vendor/x", "x", key)},
			"", []string{"new.env:3:aws-access-key-id"}},
		{"two files, the first ends with ++ b/vendor/x",
			map[string]string{"a.env": join(base...), "b.env": join(base...)},
			map[string]string{"a.env": join(insert(base, 8, "++ b/vendor/x")...), "b.env": join(insert(base, 3, key)...)},
			"", []string{"b.env:4:aws-access-key-id"}},
		{"no newline at end, before and after",
			map[string]string{"app.env": strings.TrimSuffix(join(base...), "\n")},
			map[string]string{"app.env": join(insert(base, 8, "++ b/vendor/x", key)...) + "++ b/vendor/y"},
			"", []string{"app.env:10:aws-access-key-id"}},
		{"deleted file beside an added one",
			map[string]string{"gone.env": join("++ b/vendor/x", key), "keep.env": join(base...)},
			map[string]string{"gone.env": "", "keep.env": join(insert(base, 2, "++ b/vendor/x", "x", key)...)},
			"", []string{"keep.env:5:aws-access-key-id"}},
		{"renamed and changed (no renames: delete and add)",
			map[string]string{"old.env": join(base...)},
			map[string]string{"old.env": "", "new.env": join(insert(insert(base, 6, key), 1, "++ b/vendor/x")...)},
			"", []string{"new.env:8:aws-access-key-id"}},
		{"copied and changed",
			map[string]string{"old.env": join(base...)},
			map[string]string{"copy.env": join(insert(insert(base, 6, key), 1, "++ b/vendor/x")...)},
			"", []string{"copy.env:8:aws-access-key-id"}},
		{"mode change and content",
			map[string]string{"run.sh": join(base...)},
			map[string]string{"run.sh": join(insert(insert(base, 6, key), 1, "++ b/vendor/x")...)},
			"run.sh", []string{"run.sh:8:aws-access-key-id"}},
		{"mode change only",
			map[string]string{"run.sh": join(key)},
			nil,
			"run.sh", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			mustGitT(t, repo, "init", "-q", "-b", "main")
			write := func(files map[string]string) {
				t.Helper()
				for name, content := range files {
					p := filepath.Join(repo, name)
					if content == "" {
						if err := os.Remove(p); err != nil {
							t.Fatal(err)
						}
						continue
					}
					if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(map[string]string{"README": "r\n"})
			write(tt.before)
			mustGitT(t, repo, "add", "-A")
			mustGitT(t, repo, "commit", "-q", "-m", "one")
			write(tt.after)
			mustGitT(t, repo, "add", "-A")
			if tt.chmod != "" {
				mustGitT(t, repo, "update-index", "--chmod=+x", "--", tt.chmod)
			}
			fs, err := s.ScanStaged(context.Background(), repo, GitOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Path+":"+strconv.Itoa(f.Line)+":"+f.RuleID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v\n%s", got, tt.want,
					mustGitT(t, repo, "diff", "--cached", "-U0", "--no-renames", "--full-index"))
			}
		})
	}
}

const (
	diffID1 = "1111111111111111111111111111111111111111"
	diffID2 = "2222222222222222222222222222222222222222"
)

// stagedDiffCases are hand-written diffs: what git prints for renames,
// copies, mode changes, binary files and content that looks like a header.
// They also seed FuzzParseStagedDiff.
var stagedDiffCases = []struct {
	name, diff string
	want       string // per path in order: path=ranges@blob
}{
	{"added header inside hunk",
		"diff --git a/a b/a\nindex " + diffID1 + ".." + diffID2 + " 100644\n--- a/a\n+++ b/a\n" +
			"@@ -1,0 +2 @@\n+++ b/vendor/x\n@@ -5,0 +7 @@\n+k\n",
		"a=[[2 2] [7 7]]@" + diffID2},
	{"removed header inside hunk",
		"diff --git a/a b/a\nindex " + diffID1 + ".." + diffID2 + " 100644\n--- a/a\n+++ b/a\n" +
			"@@ -2 +1,0 @@\n--- a/vendor/x\n@@ -5,0 +5 @@\n+k\n",
		"a=[[5 5]]@" + diffID2},
	{"every header-like line inside one hunk",
		"diff --git a/a b/a\nindex " + diffID1 + ".." + diffID2 + " 100644\n--- a/a\n+++ b/a\n" +
			"@@ -1,3 +1,5 @@\n-diff --git a/v b/v\n-index " + diffID1 + ".." + diffID1 + "\n--- a/vendor/x\n" +
			"+++ b/vendor/x\n+@@ -1 +1,9 @@\n+Binary files a/v and b/v differ\n+diff --git a/v b/v\n+\\ x\n" +
			"@@ -9,0 +12 @@\n+k\n",
		"a=[[1 5] [12 12]]@" + diffID2},
	{"no newline markers",
		"diff --git a/a b/a\nindex " + diffID1 + ".." + diffID2 + " 100644\n--- a/a\n+++ b/a\n" +
			"@@ -3 +3,2 @@\n-x\n\\ No newline at end of file\n+x\n+++ b/vendor/y\n\\ No newline at end of file\n",
		"a=[[3 4]]@" + diffID2},
	{"context lines counted on both sides",
		"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,3 +1,3 @@\n a\n-b\n+++ b/vendor/x\n c\n@@ -9 +9 @@\n-y\n+z\n",
		"a=[[2 2] [9 9]]@"},
	{"rename with change",
		"diff --git a/o b/n\nsimilarity index 80%\nrename from o\nrename to n\nindex " + diffID1 + ".." + diffID2 + " 100644\n" +
			"--- a/o\n+++ b/n\n@@ -1 +1 @@\n-x\n+++ b/vendor/x\n",
		"n=[[1 1]]@" + diffID2},
	{"pure rename",
		"diff --git a/o b/n\nsimilarity index 100%\nrename from o\nrename to n\n",
		""},
	{"copy with change",
		"diff --git a/o b/n\nsimilarity index 80%\ncopy from o\ncopy to n\nindex " + diffID1 + ".." + diffID2 + " 100644\n" +
			"--- a/o\n+++ b/n\n@@ -2,0 +3 @@\n+k\n",
		"n=[[3 3]]@" + diffID2},
	{"mode change with change",
		"diff --git a/r b/r\nold mode 100644\nnew mode 100755\nindex " + diffID1 + ".." + diffID2 + "\n--- a/r\n+++ b/r\n" +
			"@@ -1 +1 @@\n-x\n+k\n",
		"r=[[1 1]]@" + diffID2},
	{"mode change only, then a new file",
		"diff --git a/r b/r\nold mode 100644\nnew mode 100755\n" +
			"diff --git a/n b/n\nnew file mode 100644\nindex 0000000000000000000000000000000000000000.." + diffID2 + "\n" +
			"--- /dev/null\n+++ b/n\n@@ -0,0 +1,2 @@\n+++ b/vendor/x\n+k\n",
		"n=[[1 2]]@" + diffID2},
	{"deleted file, then a changed one",
		"diff --git a/d b/d\ndeleted file mode 100644\nindex " + diffID1 + "..0000000000000000000000000000000000000000\n" +
			"--- a/d\n+++ /dev/null\n@@ -1,2 +0,0 @@\n--- a/x\n-k\n" +
			"diff --git a/a b/a\nindex " + diffID1 + ".." + diffID2 + " 100644\n--- a/a\n+++ b/a\n@@ -1,0 +2 @@\n+k\n",
		"a=[[2 2]]@" + diffID2},
	{"binary after a text file",
		"diff --git a/a b/a\nindex " + diffID1 + ".." + diffID2 + " 100644\n--- a/a\n+++ b/a\n@@ -1,0 +2 @@\n+k\n" +
			"diff --git a/b b/b\nindex " + diffID1 + ".." + diffID1[:39] + "3 100644\nBinary files a/b and b/b differ\n",
		"a=[[2 2]]@" + diffID2 + " b=all@" + diffID1[:39] + "3"},
	{"hunk header with function context",
		"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -4,0 +5,2 @@ func f() { +9,9 @@\n+x\n+y\n",
		"a=[[5 6]]@"},
	{"zero-count side omits the comma",
		"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -3 +2,0 @@\n-x\n@@ -7,0 +7 @@\n+y\n",
		"a=[[7 7]]@"},
	{"blank context line (diff.suppressBlankEmpty)",
		"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,3 +1,3 @@\n a\n\n-b\n+++ b/vendor/x\n@@ -8,0 +9 @@\n+k\n",
		"a=[[3 3] [9 9]]@"},
	{"malformed hunk header: not counted",
		"diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,x +1 @@\n+++ b/v\n@@ -1 +1,-2 @@\n@@ -2,0 +3 @@\n+k\n",
		"a=[]@ v=[[3 3]]@"},
}

func TestParseStagedDiffHunks(t *testing.T) {
	for _, tt := range stagedDiffCases {
		t.Run(tt.name, func(t *testing.T) {
			if g := describeStagedDiff([]byte(tt.diff)); g != tt.want {
				t.Errorf("got %q; want %q", g, tt.want)
			}
		})
	}
}

func describeStagedDiff(diff []byte) string {
	added, order, blobs := parseStagedDiff(diff)
	var got []string
	for _, p := range order {
		ls := "all"
		if added[p] != nil {
			ls = fmt.Sprint(added[p])
		}
		got = append(got, p+"="+ls+"@"+blobs[p])
	}
	return strings.Join(got, " ")
}

// FuzzParseStagedDiff checks what holds for any input (each path listed
// once, no more added lines than lines starting with "+"), and that added
// content, whatever it holds, stays content of its own file in a diff as
// git writes it.
func FuzzParseStagedDiff(f *testing.F) {
	for _, tt := range stagedDiffCases {
		f.Add([]byte(tt.diff), "k")
	}
	for _, c := range []string{"++ b/vendor/x", "-- a/x\n@@ -1 +1 @@\ndiff --git a/x b/x", `\ No newline at end of file`,
		"Binary files a/x and b/x differ", "index " + diffID1 + ".." + diffID2, `++ "b/q\tq"`, ""} {
		f.Add([]byte("+++ b/a\n@@ -1,0 +2,2 @@\n"), c)
	}
	f.Fuzz(func(t *testing.T, data []byte, content string) {
		added, order, blobs := parseStagedDiff(data)
		if len(added) != len(order) {
			t.Fatalf("got %d paths in order and %d with lines", len(order), len(added))
		}
		plus := 0
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "+") {
				plus++
			}
		}
		lines := 0
		for _, p := range order {
			ls, ok := added[p]
			if !ok {
				t.Fatalf("got %q in order without lines", p)
			}
			for _, r := range ls {
				if r[1] < r[0] {
					t.Fatalf("got range %v", r)
				}
				lines += r[1] - r[0] + 1
			}
		}
		if lines > plus {
			t.Fatalf("got %d added lines from %d lines starting with +", lines, plus)
		}
		for p := range blobs {
			if _, ok := added[p]; !ok {
				t.Fatalf("got a blob for %q, which is not in order", p)
			}
		}

		cl := strings.Split(content, "\n")
		var b strings.Builder
		fmt.Fprintf(&b, "diff --git a/a b/a\nindex %s..%s 100644\n--- a/a\n+++ b/a\n@@ -1,0 +2,%d @@\n", diffID1, diffID2, len(cl))
		for _, l := range cl {
			b.WriteString("+" + l + "\n")
		}
		b.WriteString("\\ No newline at end of file\n")
		fmt.Fprintf(&b, "diff --git a/b b/b\nindex %s..%s 100644\n--- a/b\n+++ b/b\n@@ -3 +3 @@\n-%s\n+%s\n", diffID2, diffID1, cl[0], cl[0])
		want := fmt.Sprintf("a=[[2 %d]]@%s b=[[3 3]]@%s", len(cl)+1, diffID2, diffID1)
		if got := describeStagedDiff([]byte(b.String())); got != want {
			t.Fatalf("got %q; want %q for content %q", got, want, content)
		}
	})
}

// TestStagedTypeChange: a committed symlink replaced by a regular file (git
// status T, a type change) is scanned like an added file: the diff filter
// left type changes out, so such a file reached the commit unscanned.
func TestStagedTypeChange(t *testing.T) {
	s := MustTestScanner(t, Options{})
	repo := t.TempDir()
	mustGitT(t, repo, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(repo, "README"), []byte("r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("README", filepath.Join(repo, "link.env")); err != nil {
		t.Fatal(err)
	}
	mustGitT(t, repo, "add", "-A")
	mustGitT(t, repo, "commit", "-q", "-m", "one")
	if err := os.Remove(filepath.Join(repo, "link.env")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "link.env"), []byte("x\naws_access_key_id = "+reviewKey1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustGitT(t, repo, "add", "-A")
	if st := mustGitT(t, repo, "diff", "--cached", "--name-status"); !strings.HasPrefix(st, "T") {
		t.Fatalf("git status of the change: %q; want a type change (T)", st)
	}
	fs, err := s.ScanStaged(context.Background(), repo, GitOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%s:%d:%s", f.Path, f.Line, f.RuleID))
	}
	if want := []string{"link.env:2:aws-access-key-id"}; !slices.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}
