package scan

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

// naiveHits finds every case-insensitive occurrence of every keyword.
func naiveHits(keywords []string, data string) []string {
	lower := asciiLower(data)
	var out []string
	for ki, k := range keywords {
		for i := 0; i+len(k) <= len(lower); i++ {
			if lower[i:i+len(k)] == k {
				out = append(out, fmt.Sprintf("%d@%d", ki, i))
			}
		}
	}
	sort.Strings(out)
	return out
}

func dfaHits(keywords []string, data string) []string {
	var out []string
	d, err := newKeywordDFA(keywords)
	if err != nil {
		return []string{err.Error()}
	}
	d.scan([]byte(data), func(k, start, end int) {
		if end-start != len(keywords[k]) {
			out = append(out, "bad-span")
		}
		out = append(out, fmt.Sprintf("%d@%d", k, start))
	})
	sort.Strings(out)
	return out
}

func TestKeywordDFA(t *testing.T) {
	tests := []struct {
		keywords []string
		data     string
	}{
		{[]string{"key", "api_key", "ey"}, "API_KEY=1 monkey keyKEY"},
		{[]string{"he", "she", "his", "hers"}, "ushers shehishers"},
		{[]string{"-----begin", "ghp_", "gh"}, "x-----BEGIN ghp_ GHP_gh"},
		{[]string{"aaa", "aa"}, "aaaaa"},
		{nil, "anything"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.keywords, ","), func(t *testing.T) {
			got, want := dfaHits(tt.keywords, tt.data), naiveHits(tt.keywords, tt.data)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v; want %v", got, want)
			}
		})
	}
}

func FuzzKeywordDFA(f *testing.F) {
	f.Add("key,token,ey", "API_KEY=1 tokEN")
	f.Fuzz(func(t *testing.T, kws, data string) {
		var keywords []string
		for _, k := range strings.Split(kws, ",") {
			if k = asciiLower(k); k != "" && len(keywords) < 20 {
				keywords = append(keywords, k)
			}
		}
		if len(data) > 4096 {
			data = data[:4096]
		}
		got, want := dfaHits(keywords, data), naiveHits(keywords, data)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v; want %v", got, want)
		}
	})
}

// BenchmarkKeywords compares this DFA with the aho-corasick library on a
// source file with the built-in rules' keywords.
func BenchmarkKeywords(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(goroot(b), "src", "net", "http", "server.go"))
	if err != nil {
		b.Skip(err)
	}
	s := MustBuiltinScanner(b)
	var kws []string
	seen := map[string]bool{}
	for _, r := range s.rules {
		for _, k := range r.Keywords {
			if !seen[k] {
				seen[k] = true
				kws = append(kws, k)
			}
		}
	}
	b.Run("dfa", func(b *testing.B) {
		d, err := newKeywordDFA(kws)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			n := 0
			d.scan(data, func(k, s, e int) { n++ })
		}
	})
	b.Run("library", func(b *testing.B) {
		builder := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{AsciiCaseInsensitive: true, MatchKind: ahocorasick.StandardMatch, DFA: true})
		ac := builder.Build(kws)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			it := ac.IterOverlappingByte(data)
			for m := it.Next(); m != nil; m = it.Next() {
			}
		}
	})
}

// asciiLower lower-cases ASCII letters only, byte for byte, as the DFA does
// (strings.ToLower would rewrite invalid UTF-8 and shift offsets).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

func TestKeywordDFATooManyStates(t *testing.T) {
	// 70,000 distinct 4-byte keywords need more states than a uint16 holds.
	var kws []string
	for i := 0; i < 70000; i++ {
		kws = append(kws, fmt.Sprintf("%04x", i)+"z")
	}
	if _, err := newKeywordDFA(kws); err == nil || !strings.Contains(err.Error(), "automaton states") {
		t.Errorf("got %v; want an error about automaton states", err)
	}
	if _, err := newKeywordDFA(kws[:1000]); err != nil {
		t.Errorf("got %v for 1,000 keywords; want none", err)
	}
}
