package jsonw

import (
	"bytes"
	"testing"
)

// encodingJSON is what AppendString and AppendStringMap must match.
func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// seeds need each of encoding/json's escaping rules.
var seeds = []string{
	"", "plain", `quote " and backslash \`, "<script>&amp;</script>",
	"tab\tnewline\nreturn\rbackspace\bformfeed\f", "\x00\x01\x1f\x7f", "ünïcödé ✓ 日本語 🔑",
	"line\u2028separator\u2029paragraph", "invalid \xff utf-8 \xc3", "trailing \xe2\x82",
	"\\u0041 is not unescaped", "/slash/",
}

func TestAppendStringMap(t *testing.T) {
	many := map[string]string{}
	for i, s := range seeds {
		many[s] = seeds[(i+1)%len(seeds)]
	}
	for _, tc := range []struct {
		name string
		m    map[string]string
	}{
		{"nil", nil},
		{"empty", map[string]string{}},
		{"one", map[string]string{"repository": "acme/api"}},
		{"sorted", map[string]string{"ref": "refs/heads/main", "actor": "x", "b": "2", "a": "1"}},
		{"awkward keys and values", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendStringMap([]byte("prefix"), tc.m)
			want := append([]byte("prefix"), encodingJSON(t, tc.m)...)
			if !bytes.Equal(got, want) {
				t.Errorf("got %s; want %s", got, want)
			}
		})
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		want := encodingJSON(t, v)
		if got := AppendString(nil, v); !bytes.Equal(got, want) {
			t.Fatalf("string: got %s; want %s", got, want)
		}
		if got := AppendString(nil, []byte(v)); !bytes.Equal(got, want) {
			t.Fatalf("[]byte: got %s; want %s", got, want)
		}
		m := map[string]string{k: v, v: k, "": k + v}
		if got, want := AppendStringMap(nil, m), encodingJSON(t, m); !bytes.Equal(got, want) {
			t.Fatalf("map: got %s; want %s", got, want)
		}
	})
}
