package scan

import (
	"fmt"
	"testing"
)

func TestParseAddedLines(t *testing.T) {
	diff := "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,0 +2,2 @@\n+x\n+y\n@@ -9 +12 @@\n-z\n+w\n" +
		"diff --git a/\"q\\tq\" b/\"q\\tq\"\n--- /dev/null\n+++ \"b/q\\tq\"\n@@ -0,0 +1 @@\n+k\n" +
		"diff --git a/gone b/gone\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
	added, order := parseAddedLines([]byte(diff))
	if fmt.Sprint(order) != "[a.txt q\tq]" {
		t.Errorf("got order %q; want [a.txt q\\tq]", order)
	}
	var lines []int
	for l := 0; l < 20; l++ {
		if added["a.txt"].Has(l) {
			lines = append(lines, l)
		}
	}
	if fmt.Sprint(lines) != "[2 3 12]" {
		t.Errorf("got lines %v; want [2 3 12]", lines)
	}
	if !added["q\tq"].Has(1) {
		t.Errorf("got %v for the quoted path; want line 1", added["q\tq"])
	}
}

func FuzzParseAddedLines(f *testing.F) {
	f.Add([]byte("+++ b/a\n@@ -1,0 +2,2 @@\n"))
	f.Add([]byte("+++ \"b/\\303\\251\"\n@@ -0,0 +1 @@\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		added, _ := parseAddedLines(data)
		for _, m := range added {
			if len(m) > len(data) {
				t.Fatalf("got %d ranges from %d bytes", len(m), len(data))
			}
		}
	})
}
