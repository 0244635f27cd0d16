package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := NewKey()
	aad := ValueAAD("payments", "prod", "STRIPE_KEY", 3)
	ct, err := Seal(key, 7, []byte("sk_live_abc"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("sk_live_abc")) {
		t.Fatal("ciphertext holds the plaintext")
	}
	if id, _ := KeyID(ct); id != 7 {
		t.Fatalf("got key id %d; want 7", id)
	}
	pt, err := Open(key, ct, aad)
	if err != nil || string(pt) != "sk_live_abc" {
		t.Fatalf("got %q, %v; want sk_live_abc", pt, err)
	}
}

// TestAADSwap proves a ciphertext moved to another record does not open.
func TestAADSwap(t *testing.T) {
	key := NewKey()
	ct, _ := Seal(key, 1, []byte("value"), ValueAAD("p", "prod", "A", 1))
	for _, tc := range []struct {
		name, p, e, n string
		v             int
	}{
		{"other project", "q", "prod", "A", 1},
		{"other env", "p", "dev", "A", 1},
		{"other name", "p", "prod", "B", 1},
		{"other version", "p", "prod", "A", 2},
		{"shifted boundary", "pp", "rod", "A", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(key, ct, ValueAAD(tc.p, tc.e, tc.n, tc.v)); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("got %v; want ErrWrongKey", err)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	key := NewKey()
	aad := []byte("x")
	ct, _ := Seal(key, 1, []byte("value"), aad)
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	otherID := bytes.Clone(ct)
	otherID[4] ^= 1
	for _, tc := range []struct {
		name string
		key  []byte
		ct   []byte
		want error
	}{
		{"wrong key", NewKey(), ct, ErrWrongKey},
		{"flipped tag", key, flipped, ErrWrongKey},
		{"key id changed", key, otherID, ErrWrongKey},
		{"truncated", key, ct[:10], ErrFormat},
		{"bad version", key, append([]byte{9}, ct[1:]...), ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(tc.key, tc.ct, aad); !errors.Is(err, tc.want) {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
		})
	}
}

func TestKeyringRotate(t *testing.T) {
	unseal := NewKey()
	kr := NewKeyring()
	dk := NewKey()
	w1, err := kr.WrapDataKey("p", 1, dk)
	if err != nil {
		t.Fatal(err)
	}
	kr2 := kr.Rotate()
	if kr2.Current() != 2 || kr.Current() != 1 {
		t.Fatalf("got current %d (old %d); want 2 (old 1)", kr2.Current(), kr.Current())
	}
	// Old wraps still open after rotation; new wraps use key 2.
	if got, err := kr2.UnwrapDataKey("p", 1, w1); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap old: %v", err)
	}
	w2, _ := kr2.WrapDataKey("p", 1, dk)
	if id, _ := KeyID(w2); id != 2 {
		t.Fatalf("got wrap key id %d; want 2", id)
	}
	if _, err := kr2.UnwrapDataKey("q", 1, w2); err == nil {
		t.Fatal("data key moved to another project opened")
	}
	sealed, err := SealKeyring(unseal, kr2)
	if err != nil {
		t.Fatal(err)
	}
	back, err := OpenKeyring(unseal, sealed)
	if err != nil || back.Current() != 2 {
		t.Fatalf("OpenKeyring: %v", err)
	}
	// The keyring lives in the data directory on SQLite but in the database on
	// PostgreSQL: the message names the install, not where the keyring is.
	_, err = OpenKeyring(NewKey(), sealed)
	if err == nil || !strings.Contains(err.Error(), "master key does not open this install's keyring") || strings.Contains(err.Error(), "data directory") {
		t.Fatalf("wrong unseal key: got %v; want \"master key does not open this install's keyring\", no backend-specific place", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	key, err := WriteKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("got mode %o; want 600", fi.Mode().Perm())
	}
	if _, err := WriteKeyFile(path); err == nil {
		t.Fatal("WriteKeyFile overwrote an existing file")
	}
	got, err := ReadKeyFile(path)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("ReadKeyFile: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := ReadKeyFile(path); err == nil {
		t.Fatal("ReadKeyFile accepted a world-readable key file")
	}
}

func TestParseKeyErrorsDoNotEcho(t *testing.T) {
	for _, in := range []string{"", "hunter2hunter2", keyFilePrefix + "c2VjcmV0", keyFilePrefix + "!!!"} {
		_, err := ParseKey(in)
		if err == nil {
			t.Fatalf("ParseKey(%q) accepted", in)
		}
		if in != "" && strings.Contains(err.Error(), strings.TrimPrefix(in, keyFilePrefix)) {
			t.Fatalf("error %q echoes the input", err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(EncodeKey(NewKey()))
	f.Add("tokenward-master-key-v1:")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseKey(s)
		if err == nil {
			if len(key) != KeySize {
				t.Fatalf("got %d-byte key", len(key))
			}
			if back, _ := ParseKey(EncodeKey(key)); !bytes.Equal(back, key) {
				t.Fatal("EncodeKey/ParseKey do not round-trip")
			}
		}
	})
}

func FuzzOpen(f *testing.F) {
	key := NewKey()
	ct, _ := Seal(key, 1, []byte("v"), nil)
	f.Add(ct)
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := Open(key, b, nil)
		if err == nil && !bytes.Equal(b, ct) && len(pt) > 0 && string(pt) != "v" {
			t.Fatalf("forged ciphertext opened to %q", pt)
		}
	})
}

func TestSealBytes(t *testing.T) {
	key, other := NewKey(), NewKey()
	sealed, err := SealBytes(key, []byte("s3cr3t-value"), []byte("head"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("s3cr3t-value")) {
		t.Fatal("sealed bytes contain the plaintext")
	}
	tests := []struct {
		name   string
		key    []byte
		sealed []byte
		aad    string
		want   error
	}{
		{"opens", key, sealed, "head", nil},
		{"wrong key", other, sealed, "head", ErrWrongKey},
		{"other aad", key, sealed, "heaD", ErrWrongKey},
		{"flipped byte", key, append(append([]byte{}, sealed[:20]...), append([]byte{sealed[20] ^ 1}, sealed[21:]...)...), "head", ErrWrongKey},
		{"truncated", key, sealed[:27], "head", ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenBytes(tt.key, tt.sealed, []byte(tt.aad))
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenBytes: got error %v; want %v", err, tt.want)
			}
			if tt.want == nil && string(got) != "s3cr3t-value" {
				t.Errorf("OpenBytes: got %q; want the plaintext", got)
			}
		})
	}
	again, _ := SealBytes(key, []byte("s3cr3t-value"), []byte("head"))
	if bytes.Equal(again, sealed) {
		t.Error("two seals of one plaintext are equal; want a fresh nonce each time")
	}
}

// goldenValue was sealed by Seal before Cipher existed: key 00 01 … 1f, key
// id 1, ValueAAD("payments", "prod", "STRIPE_KEY", 3), plaintext
// "sk_live_golden". Values stored then must open for ever.
const goldenValue = "01000000011fadd997362d88f27ce6aec411ec5c5cb193c72d9995fe090e10f6cd2cf74257214b72bda8e4d6a61b9e"

func goldenKey() []byte {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	return key
}

// TestCipherFormat proves Cipher writes and reads exactly the format Seal
// and Open do: it opens a value stored before it existed, and what it seals
// is, byte for byte, header | nonce | AES-256-GCM(plaintext, header+aad)
// computed here with the standard library alone.
func TestCipherFormat(t *testing.T) {
	key := goldenKey()
	aad := ValueAAD("payments", "prod", "STRIPE_KEY", 3)
	c, err := NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	golden, _ := hex.DecodeString(goldenValue)
	for name, open := range map[string]func([]byte, []byte) ([]byte, error){
		"Open":        func(ct, aad []byte) ([]byte, error) { return Open(key, ct, aad) },
		"Cipher.Open": c.Open,
	} {
		pt, err := open(golden, aad)
		if err != nil || string(pt) != "sk_live_golden" {
			t.Fatalf("%s(golden): got %q, %v; want sk_live_golden", name, pt, err)
		}
	}

	ct, err := c.Seal(1, []byte("sk_live_golden"), aad)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	header := []byte{formatV1, 0, 0, 0, 1}
	nonce := ct[len(header) : len(header)+gcm.NonceSize()]
	fullAAD := binary.BigEndian.AppendUint32(bytes.Clone(header), uint32(len(aad)))
	fullAAD = append(fullAAD, aad...)
	want := gcm.Seal(append(bytes.Clone(header), nonce...), nonce, []byte("sk_live_golden"), fullAAD)
	if !bytes.Equal(ct, want) {
		t.Fatalf("Cipher.Seal: got %x; want %x", ct, want)
	}
	if pt, err := Open(key, ct, aad); err != nil || string(pt) != "sk_live_golden" {
		t.Fatalf("Open(Cipher.Seal): got %q, %v; want sk_live_golden", pt, err)
	}
}

// TestCipherRejects checks Cipher.Open refuses what Open refuses, with the
// same errors, and NewCipher refuses a key of the wrong size.
func TestCipherRejects(t *testing.T) {
	key := NewKey()
	c, err := NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("x")
	ct, _ := c.Seal(1, []byte("value"), aad)
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	otherID := bytes.Clone(ct)
	otherID[4] ^= 1
	other, _ := NewCipher(NewKey())
	for _, tc := range []struct {
		name string
		c    *Cipher
		ct   []byte
		aad  []byte
		want error
	}{
		{"wrong key", other, ct, aad, ErrWrongKey},
		{"flipped tag", c, flipped, aad, ErrWrongKey},
		{"key id changed", c, otherID, aad, ErrWrongKey},
		{"other aad", c, ct, []byte("y"), ErrWrongKey},
		{"truncated", c, ct[:10], aad, ErrFormat},
		{"bad version", c, append([]byte{9}, ct[1:]...), aad, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.c.Open(tc.ct, tc.aad); !errors.Is(err, tc.want) {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
		})
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := NewCipher(make([]byte, n)); err == nil {
			t.Errorf("NewCipher(%d bytes): got nil error; want one", n)
		}
	}
}

// TestCipherConcurrent seals and opens through one Cipher from many
// goroutines (run with -race).
func TestCipherConcurrent(t *testing.T) {
	c, err := NewCipher(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				v := fmt.Sprintf("value-%d-%d", g, i)
				aad := ValueAAD("p", "e", v, i)
				ct, err := c.Seal(1, []byte(v), aad)
				if err == nil {
					var pt []byte
					if pt, err = c.Open(ct, aad); err == nil && string(pt) != v {
						err = fmt.Errorf("got %q; want %q", pt, v)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestValueOpener: a ValueOpener, reused, opens what was sealed with
// ValueAAD as Open does, appending to dst, and refuses a value of another
// row or version; its associated data is byte for byte joinAAD's of
// ValueAAD, and PlaintextLen is the opened length.
func TestValueOpener(t *testing.T) {
	c, err := NewCipher(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		p, e, n string
		v       int
		value   string
	}
	rows := []row{{"payments", "prod", "STRIPE_KEY", 3, "sk_live_abc"}, {"p", "e", "N", 1, ""}, {"a/b", "ü", strings.Repeat("X", 200), 1 << 40, strings.Repeat("v", 5000)}}
	var o ValueOpener
	dst := make([]byte, 0, 8192)
	for _, r := range rows {
		ct, err := c.Seal(2, []byte(r.value), ValueAAD(r.p, r.e, r.n, r.v))
		if err != nil {
			t.Fatal(err)
		}
		if PlaintextLen(ct) != len(r.value) {
			t.Errorf("PlaintextLen: got %d; want %d", PlaintextLen(ct), len(r.value))
		}
		before := len(dst)
		got, err := o.Open(c, dst, ct, r.p, r.e, r.n, r.v)
		if err != nil || string(got[before:]) != r.value || !bytes.Equal(got[:before], dst) {
			t.Fatalf("%s/%s/%s: got %q, %v; want %q appended", r.p, r.e, r.n, got[before:], err, r.value)
		}
		if want := joinAAD(ct[:headerSize], ValueAAD(r.p, r.e, r.n, r.v)); !bytes.Equal(o.aad, want) {
			t.Errorf("associated data %x; want %x", o.aad, want)
		}
		dst = got
		for _, other := range []row{{r.p, r.e, r.n + "x", r.v, ""}, {r.p, r.e, r.n, r.v + 1, ""}, {r.e, r.p, r.n, r.v, ""}} {
			if _, err := o.Open(c, nil, ct, other.p, other.e, other.n, other.v); !errors.Is(err, ErrWrongKey) {
				t.Errorf("%s/%s/%s v%d opened as %s/%s/%s v%d: %v", r.p, r.e, r.n, r.v, other.p, other.e, other.n, other.v, err)
			}
		}
	}
	if _, err := o.Open(c, nil, []byte("short"), "p", "e", "n", 1); !errors.Is(err, ErrFormat) {
		t.Errorf("short ciphertext: got %v; want ErrFormat", err)
	}
}
