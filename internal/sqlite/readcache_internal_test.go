package sqlite

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// TestWALClockHeader: the clock moves only when the header changes, and
// gives no generation for a header it cannot trust (so the cache is
// bypassed, never wrong).
func TestWALClockHeader(t *testing.T) {
	header := func(mxFrame uint32) [walHeaderSize]byte {
		var h [walHeaderSize]byte
		binary.NativeEndian.PutUint32(h[0:], walVersion)
		h[12] = 1 // isInit
		binary.NativeEndian.PutUint32(h[16:], mxFrame)
		return h
	}
	copies := func(first, second [walHeaderSize]byte) []byte { return append(first[:], second[:]...) }
	unknown := header(7)
	binary.NativeEndian.PutUint32(unknown[0:], walVersion+1)
	uninit := header(7)
	uninit[12] = 0
	steps := []struct {
		name    string
		file    []byte
		wantGen uint64
		wantOK  bool
	}{
		{"first header", copies(header(7), header(7)), 1, true},
		{"unchanged", copies(header(7), header(7)), 1, true},
		{"a commit", copies(header(8), header(8)), 2, true},
		{"a commit in progress", copies(header(8), header(9)), 0, false},
		{"unchanged after it", copies(header(8), header(8)), 2, true},
		{"uninitialised", copies(uninit, uninit), 0, false},
		{"unknown version", copies(unknown, unknown), 0, false},
		{"short file", copies(header(9), header(9))[:80], 0, false},
		{"the next commit", copies(header(9), header(9)), 3, true},
	}
	path := filepath.Join(t.TempDir(), "db-shm")
	c := &walClock{}
	for _, s := range steps {
		if err := os.WriteFile(path, s.file, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		c.shm = f
		gen, ok := c.generation()
		f.Close()
		if gen != s.wantGen || ok != s.wantOK {
			t.Errorf("%s: got %d, %v; want %d, %v", s.name, gen, ok, s.wantGen, s.wantOK)
		}
	}
}
