package inject

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// referenceMask masks the union of every occurrence of every pattern in s,
// the slow obvious way, to check the streaming automaton against.
func referenceMask(patterns []string, s string) string {
	var regs []region
	for _, p := range patterns {
		for i := 0; i+len(p) <= len(s); i++ {
			if s[i:i+len(p)] == p {
				regs = append(regs, region{int64(i), int64(i + len(p))})
			}
		}
	}
	slices.SortFunc(regs, func(a, b region) int { return int(a.start - b.start) })
	var merged []region
	for _, g := range regs {
		if n := len(merged); n > 0 && g.start < merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, g.end)
			continue
		}
		merged = append(merged, g)
	}
	var b strings.Builder
	at := int64(0)
	for _, g := range merged {
		b.WriteString(s[at:g.start])
		b.WriteString(Mask)
		at = g.end
	}
	b.WriteString(s[at:])
	return b.String()
}

// redact writes in through a fresh redactor in chunks of the given sizes
// (cycled; 0 means all at once).
func redact(t testing.TB, m *Masker, in string, chunk ...int) string {
	t.Helper()
	var out bytes.Buffer
	r := m.NewRedactor(&out)
	for i := 0; len(in) > 0; i++ {
		n := len(in)
		if len(chunk) > 0 && chunk[i%len(chunk)] > 0 {
			n = min(n, chunk[i%len(chunk)])
		}
		if _, err := r.Write([]byte(in[:n])); err != nil {
			t.Fatalf("Write: %v", err)
		}
		in = in[n:]
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String()
}

func TestRedactorMasksEveryForm(t *testing.T) {
	const secret = "s3cr3t+/value?&=\"<quoted>\\"
	const ml = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----"
	// Long enough (over 57 bytes) that base64 wraps its encoding, as a PEM
	// key's or a long JWT's.
	const long = "a value long enough that base64 wraps its encoding across two lines or three"
	m := NewMasker(map[string]string{"API_KEY": secret, "PEM": ml, "PIN": "123", "UNI": "pässwörd-✓-🔑", "LONG": long}, 0)
	// wrap splits s into lines of width characters, as base64 and
	// openssl base64 print it.
	wrap := func(s string, width int) string {
		var b strings.Builder
		for len(s) > width {
			b.WriteString(s[:width] + "\n")
			s = s[width:]
		}
		return b.String() + s + "\n"
	}
	b := []byte(secret)
	// A longer base64 stream that carries the secret at each alignment.
	aligned := func(enc *base64.Encoding, align int) string {
		return enc.EncodeToString(append(append(bytes.Repeat([]byte{'x'}, 6+align), b...), "tail!"...))
	}
	// Every line of the long value's wrapped encodings that is long enough
	// to be masked.
	var wrappedLines []string
	for _, enc := range []string{long, long + "\n"} {
		for _, width := range []int{76, 64} {
			for _, l := range strings.Split(wrap(base64.StdEncoding.EncodeToString([]byte(enc)), width), "\n") {
				if len(l) >= wrappedMin {
					wrappedLines = append(wrappedLines, l)
				}
			}
		}
	}
	tests := []struct {
		name, in string
	}{
		{"raw", "key=" + secret + "\n"},
		{"base64 std", base64.StdEncoding.EncodeToString(b)},
		{"base64 url", base64.URLEncoding.EncodeToString(b)},
		{"base64 raw std", base64.RawStdEncoding.EncodeToString(b)},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(b)},
		{"base64 std align 0", aligned(base64.StdEncoding, 0)},
		{"base64 std align 1", aligned(base64.StdEncoding, 1)},
		{"base64 std align 2", aligned(base64.StdEncoding, 2)},
		{"base64 url align 1", aligned(base64.URLEncoding, 1)},
		{"base64 url align 2", aligned(base64.RawURLEncoding, 2)},
		{"base64 wrapped at 76 (base64 of a long value)", wrap(base64.StdEncoding.EncodeToString([]byte(long)), 76)},
		{"base64 wrapped at 76 (echo's newline too)", wrap(base64.StdEncoding.EncodeToString([]byte(long+"\n")), 76)},
		{"base64 wrapped at 64 (openssl base64)", wrap(base64.StdEncoding.EncodeToString([]byte(long+"\n")), 64)},
		{"hex (xxd -p of echo's output)", hex.EncodeToString(append(b, '\n')) + "\n"},
		{"hex upper-case (basenc --base16)", "0A" + strings.ToUpper(hex.EncodeToString(b))},
		{"multi-line line in hex", "hex " + hex.EncodeToString([]byte("MIIBOgIBAAJBAKj34GkxFhD9"))},
		{"query escaped", "GET /?k=" + url.QueryEscape(secret)},
		{"path escaped", "GET /" + url.PathEscape(secret)},
		{"query escaped lower-case hex", "GET /?k=" + strings.ToLower(url.QueryEscape(secret))},
		{"json", mustJSON(t, map[string]string{"k": secret})},
		{"json in ansi", "\x1b[31m" + mustJSON(t, secret) + "\x1b[0m"},
		{"multi-line lines", "line: MIIBOgIBAAJBAKj34GkxFhD9\n"},
		{"json ascii-only (python)", `{"u": "p\u00e4ssw\u00f6rd-\u2713-\ud83d\udd11"}`},
		{"multi-line whole json", mustJSON(t, ml)},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 3, 7} {
			t.Run(fmt.Sprintf("%s/chunk=%d", tt.name, chunk), func(t *testing.T) {
				got := redact(t, m, tt.in, chunk)
				if want := referenceMask(m.patterns, tt.in); got != want {
					t.Errorf("got %q; want %q", got, want)
				}
				if !strings.Contains(got, Mask) {
					t.Errorf("got %q; want a %q in it", got, Mask)
				}
				for _, leak := range append([]string{secret, "MIIBOgIBAAJBAKj34GkxFhD9", "s3cr3t", "ssw", hex.EncodeToString(b[:8]), strings.ToUpper(hex.EncodeToString(b[:8]))}, wrappedLines...) {
					if strings.Contains(got, leak) {
						t.Errorf("got %q; want no %q in it", got, leak)
					}
				}
			})
		}
	}
	if got, want := m.ShortNames(), []string{"PIN"}; !slices.Equal(got, want) {
		t.Errorf("ShortNames() = %q; want %q", got, want)
	}
	if got := redact(t, m, "pin 123\n"); got != "pin 123\n" {
		t.Errorf("short value: got %q; want it unmasked", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRedactorKeepsANSI(t *testing.T) {
	m := NewMasker(map[string]string{"K": "hunter22"}, 0)
	in := "\x1b[1;32mok\x1b[0m token=\x1b[33mhunter22\x1b[0m\r\n\x1b[2K\x1b[1Gdone"
	want := "\x1b[1;32mok\x1b[0m token=\x1b[33m***\x1b[0m\r\n\x1b[2K\x1b[1Gdone"
	for _, chunk := range []int{0, 1, 2, 5} {
		if got := redact(t, m, in, chunk); got != want {
			t.Errorf("chunk %d: got %q; want %q", chunk, got, want)
		}
	}
}

// TestRedactorHoldsOnlyAPossiblePrefix checks that output not able to begin
// a value is written at once (an interactive prompt shows), and that only a
// possible beginning of a value is held back.
func TestRedactorHoldsOnlyAPossiblePrefix(t *testing.T) {
	m := NewMasker(map[string]string{"K": "hunter22"}, 0)
	var out bytes.Buffer
	r := m.NewRedactor(&out)
	steps := []struct{ write, want string }{
		{"Password: ", "Password: "},
		{"hun", "Password: "},
		{"ted", "Password: hunted"},
		{" hunter2", "Password: hunted "},
		{"2", "Password: hunted ***"},
		{"\nhunt", "Password: hunted ***\n"},
	}
	for _, s := range steps {
		if _, err := r.Write([]byte(s.write)); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != s.want {
			t.Fatalf("after writing %q: got %q; want %q", s.write, got, s.want)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "Password: hunted ***\nhunt"; got != want {
		t.Errorf("after Close: got %q; want %q", got, want)
	}
	if _, err := r.Write([]byte("x")); err != ErrClosed {
		t.Errorf("Write after Close: got %v; want ErrClosed", err)
	}
}

func TestRedactorOverlappingValues(t *testing.T) {
	m := NewMasker(map[string]string{"A": "abcdef", "B": "defghi", "C": "cdefgh12"}, 0)
	tests := []struct{ in, want string }{
		{"xxabcdefghiyy", "xx***yy"},
		{"abcdefabcdef", "******"},
		{"abcdeabcdef", "abcde***"},
		{"cdefgh1cdefgh12", "cdefgh1***"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 4} {
			if got := redact(t, m, tt.in, chunk); got != tt.want {
				t.Errorf("%q chunk %d: got %q; want %q", tt.in, chunk, got, tt.want)
			}
		}
	}
}

// TestRedactorSharedMasker runs two redactors (stdout, stderr) over one
// Masker concurrently; -race checks that the Masker is read-only.
func TestRedactorSharedMasker(t *testing.T) {
	m := NewMasker(map[string]string{"K": "hunter22"}, 0)
	done := make(chan string, 2)
	for range 2 {
		go func() {
			var b bytes.Buffer
			r := m.NewRedactor(&b)
			for range 100 {
				io.WriteString(r, "a hunter22 b\n")
			}
			r.Close()
			done <- b.String()
		}()
	}
	want := strings.Repeat("a *** b\n", 100)
	for range 2 {
		if got := <-done; got != want {
			t.Errorf("got %q; want %q", got[:40], want[:40])
		}
	}
}

// TestRedactorManyValuesDenseLimit forces the sparse (deep-state) path by
// compiling more values than the dense table holds.
func TestRedactorManyValues(t *testing.T) {
	vals := testValues(3000, 40)
	m := NewMasker(vals, 0)
	if int(m.nDense) >= len(m.fail) {
		t.Fatalf("got all %d states dense; want the sparse path exercised", len(m.fail))
	}
	var in strings.Builder
	for _, v := range []string{vals["V0"], vals["V1234"], vals["V2999"]} {
		in.WriteString("x " + v + " " + base64.StdEncoding.EncodeToString([]byte(v)) + "\n")
	}
	got := redact(t, m, in.String(), 5)
	if want := "x *** ***\nx *** ***\nx *** ***\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// testValues returns n deterministic pseudo-random alphanumeric values.
func testValues(n, length int) map[string]string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	x := uint64(0x9E3779B97F4A7C15)
	vals := make(map[string]string, n)
	for i := range n {
		b := make([]byte, length)
		for j := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[j] = alpha[x%uint64(len(alpha))]
		}
		vals[fmt.Sprintf("V%d", i)] = string(b)
	}
	return vals
}

func FuzzRedactor(f *testing.F) {
	f.Add("hunter22", "pass\nword", "say hunter22 and aHVudGVyMjI= and pass\n", uint8(3))
	f.Add("abcd", "bcde", "abcdeabcde", uint8(1))
	f.Add("hunter22", "x\r\ny", "aHVudGVyMjIK\nb64 eD0NCnk= dXNlcjpodW50ZXIyMg0K", uint8(4))
	f.Add("ünï©ødé", "x\"y\\z", `"x\"y\\z" ünï©ødé`, uint8(2))
	f.Fuzz(func(t *testing.T, v1, v2, in string, chunk uint8) {
		// A value containing the mask itself could be spelled by masked
		// output; such values are out of scope for the property.
		if strings.Contains(v1, "*") || strings.Contains(v2, "*") || len(in) > 4096 {
			t.Skip()
		}
		// Minimum lengths below 3 turn off the start filter; cover both.
		m := NewMasker(map[string]string{"A": v1, "B": v2}, 1+int(chunk>>5))
		got := redact(t, m, in, int(chunk%16), 1, int(chunk%5))
		if want := referenceMask(m.patterns, in); got != want {
			t.Fatalf("got %q; want %q", got, want)
		}
		for _, p := range m.patterns {
			if strings.Contains(got, p) {
				t.Fatalf("output %q holds masked form %q", got, p)
			}
		}
	})
}

// TestRedactorRandomAgainstReference builds inputs from pieces of the values
// over a small alphabet (so values overlap, nest and split often) and checks
// the redactor against the reference for random write splits.
func TestRedactorRandomAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abc="[rng.IntN(4)]
		}
		return string(b)
	}
	for iter := range 3000 {
		vals := map[string]string{}
		for i := range 1 + rng.IntN(4) {
			vals[fmt.Sprintf("V%d", i)] = word(1 + rng.IntN(8))
		}
		minLen := 1 + rng.IntN(4)
		m := NewMasker(vals, minLen)
		var in strings.Builder
		for range rng.IntN(12) {
			if v := vals[fmt.Sprintf("V%d", rng.IntN(len(vals)))]; rng.IntN(2) == 0 {
				in.WriteString(v[:rng.IntN(len(v)+1)] + v)
			} else {
				in.WriteString(word(rng.IntN(4)))
			}
		}
		chunks := []int{1 + rng.IntN(5), 1 + rng.IntN(3), 1 + rng.IntN(9)}
		got := redact(t, m, in.String(), chunks...)
		if want := referenceMask(m.patterns, in.String()); got != want {
			t.Fatalf("iteration %d: values %q min %d input %q chunks %v: got %q; want %q", iter, vals, minLen, in.String(), chunks, got, want)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestRedactorWriteErrorSticks(t *testing.T) {
	m := NewMasker(map[string]string{"K": "hunter22"}, 0)
	r := m.NewRedactor(&failWriter{n: 1})
	if _, err := r.Write([]byte("one\n")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	if _, err := r.Write([]byte("two\n")); err == nil {
		t.Fatalf("second write: got nil error; want the writer's")
	}
	if _, err := r.Write([]byte("three\n")); err == nil {
		t.Errorf("write after a failure: got nil error; want it to stick")
	}
	if err := r.Close(); err == nil {
		t.Errorf("Close after a failure: got nil error; want it")
	}
}

// TestRedactorLogStream checks the skipping scan on realistic output: values
// at every offset parity, with neighbours that begin like a value.
func TestRedactorLogStream(t *testing.T) {
	vals := testValues(100, 32)
	m := NewMasker(vals, 0)
	if m.skipStride != maxSkipStride || m.gram != 4 {
		t.Fatalf("skipStride, gram = %d, %d; want %d, 4 for 32-byte values", m.skipStride, m.gram, maxSkipStride)
	}
	var in strings.Builder
	i := 0
	for _, v := range vals {
		pad := strings.Repeat("x", i%4)
		fmt.Fprintf(&in, "line %d %s%s %s%s\n", i, pad, v, v[:5], base64.StdEncoding.EncodeToString([]byte(pad+v)))
		i++
	}
	for _, chunk := range []int{0, 1, 2, 3, 7, 4096} {
		got := redact(t, m, in.String(), chunk)
		if want := referenceMask(m.patterns, in.String()); got != want {
			t.Fatalf("chunk %d: got %q; want %q", chunk, got[:200], want[:200])
		}
		if l := leaks(got, vals); len(l) > 0 {
			t.Fatalf("chunk %d: leaks %v", chunk, l)
		}
	}
}

// TestRedactorEveryStride checks the probing scan for every stride and gram
// size (set by the shortest pattern) with values at every offset of a longer line and
// decoys that share a value's first gram or one inside it.
func TestRedactorEveryStride(t *testing.T) {
	for length := 3; length <= maxSkipStride+5; length++ {
		vals := testValues(20, length)
		m := NewMasker(vals, 3)
		gram := 3
		if length >= 4 {
			gram = 4
		}
		if want := min(length-gram+1, maxSkipStride); m.skipStride != want || m.gram != gram {
			t.Fatalf("length %d: skipStride, gram = %d, %d; want %d, %d", length, m.skipStride, m.gram, want, gram)
		}
		var in strings.Builder
		i := 0
		for _, v := range vals {
			pad := strings.Repeat("-", i%(maxSkipStride+1))
			fmt.Fprintf(&in, "%s%s %s|%s %s\n", pad, v, v[:3], v[1:], v[:length-1])
			i++
		}
		for _, chunk := range []int{0, 1, 5, 11, 64} {
			got := redact(t, m, in.String(), chunk)
			if want := referenceMask(m.patterns, in.String()); got != want {
				t.Fatalf("length %d chunk %d: got %q; want %q", length, chunk, got, want)
			}
			if l := leaks(got, vals); len(l) > 0 {
				t.Fatalf("length %d chunk %d: leaks %v", length, chunk, l)
			}
		}
	}
}

// TestRedactorCallerReusesBuffer writes through one buffer that is
// overwritten after every Write, as io.Copy does: bytes held back across
// writes must be the redactor's own copy, not the caller's buffer.
func TestRedactorCallerReusesBuffer(t *testing.T) {
	vals := testValues(10, 12)
	m := NewMasker(vals, 0)
	var in strings.Builder
	for _, v := range vals {
		fmt.Fprintf(&in, "a %s b %s%s c %s\n", v, v[:7], v, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	want := referenceMask(m.patterns, in.String())
	for _, chunk := range []int{1, 3, 7, 13, 64} {
		var out bytes.Buffer
		r := m.NewRedactor(&out)
		buf := make([]byte, chunk)
		src := in.String()
		for len(src) > 0 {
			n := copy(buf, src)
			src = src[n:]
			if _, err := r.Write(buf[:n]); err != nil {
				t.Fatalf("Write: %v", err)
			}
			for i := range buf {
				buf[i] = '#'
			}
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := out.String(); got != want {
			t.Fatalf("chunk %d: got %q; want %q", chunk, got, want)
		}
	}
}

// TestRedactorReadFrom copies through a real pipe with io.Copy, the way
// os/exec hands a child's output to the redactor, and checks errors from
// either side come back.
func TestRedactorReadFrom(t *testing.T) {
	vals := testValues(20, 20)
	m := NewMasker(vals, 0)
	var in strings.Builder
	for i := 0; in.Len() < readBufSize+4096; i++ {
		v := vals[fmt.Sprintf("V%d", i%len(vals))]
		fmt.Fprintf(&in, "line %d token=%s b64=%s\n", i, v, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	want := referenceMask(m.patterns, in.String())

	t.Run("pipe", func(t *testing.T) {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		go func() {
			// Odd write sizes, so values are split across reads.
			src := in.String()
			for len(src) > 0 {
				n := min(len(src), 4093)
				pw.Write([]byte(src[:n]))
				src = src[n:]
			}
			pw.Close()
		}()
		var out bytes.Buffer
		r := m.NewRedactor(&out)
		n, err := io.Copy(r, pr)
		if err != nil {
			t.Fatalf("io.Copy: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n != int64(in.Len()) {
			t.Errorf("io.Copy copied %d bytes; want %d", n, in.Len())
		}
		if got := out.String(); got != want {
			t.Errorf("output differs from the reference (got %d bytes; want %d)", len(got), len(want))
		}
		if l := leaks(out.String(), vals); len(l) > 0 {
			t.Errorf("leaks %v", l)
		}
	})
	t.Run("source error", func(t *testing.T) {
		boom := errors.New("read failed")
		r := m.NewRedactor(io.Discard)
		_, err := io.Copy(r, io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)))
		if !errors.Is(err, boom) {
			t.Errorf("got %v; want %v", err, boom)
		}
	})
	t.Run("sink error", func(t *testing.T) {
		r := m.NewRedactor(&failWriter{n: 0})
		_, err := io.Copy(r, strings.NewReader(in.String()))
		if err == nil || err.Error() != "disk full" {
			t.Errorf("got %v; want disk full", err)
		}
	})
}
