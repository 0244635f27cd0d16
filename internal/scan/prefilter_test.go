package scan

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/scan/rules"
)

func TestAssignmentFollows(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"=x", true},
		{" = x", true},
		{"\t:x", true},
		{"_id: x", true},
		{"\": \"x\"", true},
		{"' => 'x'", true},
		{" := x", true},
		{" ?= x", true},
		{".prod.v2 = x", true},
		{"          = x", true},   // 10 blanks
		{"           = x", false}, // 11 blanks
		{"", false},
		{" ", false},
		{"(x)", false},
		{" ?x", false},
		{"?", false},
		{"s []byte", false},
		{"\"\" = x", false}, // two quotes
	} {
		if got := assignmentFollows([]byte("key"+tt.in), 3); got != tt.want {
			t.Errorf("assignmentFollows(%q): got %v; want %v", "key"+tt.in, got, tt.want)
		}
	}
}

// TestAssignAfterKeywordIsExact scans the corpus, a slice of the Go tree
// and hand-made hard cases with the built-in rules, and again with every
// AssignAfterKeyword prefilter off and generic-api-key on its old keyword
// "key": the findings must be the same, so the prefilter and the specific
// keywords only save time.
func TestAssignAfterKeywordIsExact(t *testing.T) {
	cfg, err := LoadFS(rules.FS)
	if err != nil {
		t.Fatal(err)
	}
	ref := &Config{Allowlists: cfg.Allowlists}
	n := 0
	for _, r := range cfg.Rules {
		c := *r
		if c.AssignAfterKeyword {
			n++
			c.AssignAfterKeyword = false
			if c.ID == "generic-api-key" {
				c.Keywords = []string{"key"}
			}
		}
		ref.Rules = append(ref.Rules, &c)
	}
	if n == 0 {
		t.Fatal("got no rule with assignAfterKeyword; want the generic ones")
	}
	fast, err := New(cfg, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := New(ref, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{filepath.Join("..", "..", "testdata", "scan", "corpus")}
	if gr := goroot(t); gr != "" {
		dirs = append(dirs, filepath.Join(gr, "src", "crypto", "tls"), filepath.Join(gr, "src", "net", "http"))
	}
	total := 0
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		got, err := fast.ScanDir(context.Background(), d, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := slow.ScanDir(context.Background(), d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := findingKeys(got), findingKeys(want); !slices.Equal(g, w) {
			t.Errorf("%s: got %d findings %q; want %d %q", d, len(g), g, len(w), w)
		}
		total += len(got)
	}
	long := strings.Repeat("x", 3000)
	hard := strings.Join([]string{
		`key api_key = "2MPm7aQuZ1trKuqiHjWTDQh8VBgbJqHE"`,
		`the apikey (see below); token: "Qm9vT2J4a0pYd2lYbTJ0dVp5Q0c"`,
		`secret secret_value secretKey="GbOgLcyVRYNL7mdwrvN9dlXXcJGPImL0mJeU07gr" token`,
		`password or db_password: 'Zq8#vLp2!xR4tW9m'`,
		long + ` client_key: 758BzxGrA5Qdr/w6xrBDf+bK0fFQJmdSAbSwhxOe ` + long + ` auth_token = 'Qm9vT2J4a0pYd2lYbTJ0dVp5Q0c'`,
		`key` + long + ` private.key ?= "hQ2v9LmX0pR7sT4wY6zA1cE3gJ5kN8bD"`,
		`session_token` + strings.Repeat(" ", 11) + `= "Qm9vT2J4a0pYd2lYbTJ0dVp5Q0c"`,
		`{"refresh_token":"Qm9vT2J4a0pYd2lYbTJ0dVp5Q0c","api_key" : "2MPm7aQuZ1trKuqiHjWTDQh8VBgbJqHE"}`,
	}, "\n")
	for i := 0; i < 2; i++ {
		data := []byte(hard)
		if i == 1 {
			data = []byte(strings.ReplaceAll(hard, "\n", " "))
		}
		g, w := findingKeys(fast.ScanBytes("hard.txt", data)), findingKeys(slow.ScanBytes("hard.txt", data))
		if !slices.Equal(g, w) {
			t.Errorf("hard cases %d: got %q; want %q", i, g, w)
		}
		total += len(g)
	}
	if total == 0 {
		t.Fatal("got no findings at all; want some to compare")
	}
}

func findingKeys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s:%d:%d %s %s", f.Path, f.Line, f.Column, f.RuleID, f.Fingerprint))
	}
	slices.Sort(out)
	return out
}

// longRunsNaive is forEachLongRun's reference: split on every byte outside
// the base64 alphabet and keep the runs of at least minEncodedRun.
func longRunsNaive(data []byte) [][2]int {
	var out [][2]int
	for i := 0; i < len(data); {
		if classes[data[i]]&clB64 == 0 {
			i++
			continue
		}
		j := i
		for j < len(data) && classes[data[j]]&clB64 != 0 {
			j++
		}
		if j-i >= minEncodedRun {
			out = append(out, [2]int{i, j})
		}
		i = j
	}
	return out
}

func longRuns(data []byte) [][2]int {
	var out [][2]int
	forEachLongRun(data, func(i, j int) { out = append(out, [2]int{i, j}) })
	return out
}

func TestForEachLongRun(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	alphabets := []string{"ab=", "abcdefgh \n", "aB3+/_-.= ", "x ", strings.Repeat("q", 30) + " "}
	inputs := []string{"", "a", strings.Repeat("a", 19), strings.Repeat("a", 20), " " + strings.Repeat("a", 20) + " ",
		strings.Repeat("a", 19) + " " + strings.Repeat("b", 19), "YWJj==" + strings.Repeat("Z", 25)}
	for _, a := range alphabets {
		for n := 0; n < 200; n++ {
			b := make([]byte, rnd.IntN(300))
			for i := range b {
				b[i] = a[rnd.IntN(len(a))]
			}
			inputs = append(inputs, string(b))
		}
	}
	for _, in := range inputs {
		if got, want := longRuns([]byte(in)), longRunsNaive([]byte(in)); !slices.Equal(got, want) {
			t.Fatalf("forEachLongRun(%q): got %v; want %v", in, got, want)
		}
	}
}

func FuzzForEachLongRun(f *testing.F) {
	f.Add([]byte("token: YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo= end"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := longRuns(data), longRunsNaive(data); !slices.Equal(got, want) {
			t.Fatalf("got %v; want %v", got, want)
		}
	})
}
