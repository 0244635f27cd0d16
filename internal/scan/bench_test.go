package scan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/scan/rules"
)

// BenchmarkScanDir scans $GOROOT/src/net with the built-in rules (set
// SCANBENCH_DIR to use another tree); see cmd/scanbench for grep ratios.
func BenchmarkScanDir(b *testing.B) {
	dir := os.Getenv("SCANBENCH_DIR")
	if dir == "" {
		dir = filepath.Join(goroot(b), "src", "net")
	}
	cfg, err := LoadFS(rules.FS)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	st := &Stats{}
	if _, err := s.ScanDir(context.Background(), dir, st); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Bytes.Load())
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.ScanDir(context.Background(), dir, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanBytes measures one worker on one buffer (no I/O).
func BenchmarkScanBytes(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(goroot(b), "src", "net", "http", "server.go"))
	if err != nil {
		b.Skip(err)
	}
	cfg, err := LoadFS(rules.FS)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := s.NewWorker()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w.Scan("server.go", data)
	}
}

func goroot(b testing.TB) string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skip("go env GOROOT:", err)
	}
	return strings.TrimSpace(string(out))
}

// MustBuiltinScanner returns a Scanner over the built-in rules.
func MustBuiltinScanner(tb testing.TB) *Scanner {
	tb.Helper()
	cfg, err := LoadFS(rules.FS)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
