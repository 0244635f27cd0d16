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

// plainByte is plain8's rule for one byte.
func plainByte(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }

func naivePlain8(w uint64) bool {
	for i := range 8 {
		if !plainByte(byte(w >> (8 * i))) {
			return false
		}
	}
	return true
}

// TestPlain8 tries every byte value at every position of a plain word,
// and beside each of the others.
func TestPlain8(t *testing.T) {
	const plain = 0x6161616161616161 // "aaaaaaaa"
	for p := range 8 {
		for c := range 256 {
			w := plain&^(0xff<<(8*p)) | uint64(c)<<(8*p)
			if got, want := plain8(w), plainByte(byte(c)); got != want {
				t.Errorf("byte %#x at %d: got %v; want %v", c, p, got, want)
			}
			for d := range 256 {
				w2 := w&^(0xff<<(8*((p+1)%8))) | uint64(d)<<(8*((p+1)%8))
				if got, want := plain8(w2), naivePlain8(w2); got != want {
					t.Fatalf("word %#x: got %v; want %v", w2, got, want)
				}
			}
		}
	}
}

func FuzzPlain8(f *testing.F) {
	f.Add(uint64(0x6161616161616161))
	f.Add(uint64(0x2221205c7f801f00))
	f.Fuzz(func(t *testing.T, w uint64) {
		if got, want := plain8(w), naivePlain8(w); got != want {
			t.Fatalf("word %#x: got %v; want %v", w, got, want)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	value := []byte("sk_live_" + string(bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), 2))[:92])
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = AppendString(buf[:0], value)
	}
}
