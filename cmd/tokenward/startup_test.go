//go:build !tokenward_client

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// initRecord is one line of GODEBUG=inittrace=1: a package's
// initialisation before main.
type initRecord struct {
	pkg           string
	ms            float64
	bytes, allocs int
}

// inittrace runs `BIN --help` (binDir's) with GODEBUG=inittrace=1 and
// parses the runtime's lines ("init PKG @T ms, C ms clock, B bytes, A
// allocs").
func inittrace(tb testing.TB, bin string) []initRecord {
	tb.Helper()
	c := exec.Command(filepath.Join(binDir, bin), "--help")
	c.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		tb.Fatalf("%s --help: %v\n%s", bin, err, stderr.String())
	}
	var out []initRecord
	for line := range strings.Lines(stderr.String()) {
		f := strings.Fields(line)
		if len(f) != 11 || f[0] != "init" || f[6] != "clock," {
			continue
		}
		ms, err1 := strconv.ParseFloat(f[4], 64)
		by, err2 := strconv.Atoi(f[7])
		al, err3 := strconv.Atoi(f[9])
		if err1 != nil || err2 != nil || err3 != nil {
			tb.Fatalf("unexpected inittrace line %q", line)
		}
		out = append(out, initRecord{pkg: f[1], ms: ms, bytes: by, allocs: al})
	}
	if len(out) == 0 {
		tb.Fatalf("no inittrace lines in:\n%s", stderr.String())
	}
	return out
}

// TestStartupDoesNoEagerWork keeps work out of our packages'
// initialisation, which every command pays for: a package-level
// regexp.MustCompile costs 25 to 1,700 allocations, a CRC-32C table 9 KiB.
// Allocation counts and bytes are deterministic for a build, unlike clock
// times (BenchmarkCLISecretGet reports those). Make such things on first
// use (sync.OnceValue) or in the command that needs them. The full build
// links every package the client build does.
func TestStartupDoesNoEagerWork(t *testing.T) {
	const maxAllocs, maxBytes = 16, 4096
	own := 0
	for _, r := range inittrace(t, "tokenward") {
		if r.pkg != "main" && !strings.HasPrefix(r.pkg, "github.com/tokenward/tokenward") {
			continue
		}
		own++
		if r.allocs > maxAllocs || r.bytes > maxBytes {
			t.Errorf("init %s: got %d allocations, %d bytes; want at most %d, %d", r.pkg, r.allocs, r.bytes, maxAllocs, maxBytes)
		}
	}
	if own < 5 {
		t.Fatalf("inittrace named %d of our packages; want the binary's own packages", own)
	}
}

// TestStartupRunsNoPrometheusInit: every command pays for the package
// initialisation of everything linked in, and client_golang's (a default
// registry with Go and process collectors, procfs, protobuf, expvar) was
// 0.5 to 0.9 ms of it; the server's metrics use VictoriaMetrics/metrics.
// This fails if a github.com/prometheus package is linked in again.
func TestStartupRunsNoPrometheusInit(t *testing.T) {
	for _, r := range inittrace(t, "tokenward") {
		if strings.HasPrefix(r.pkg, "github.com/prometheus/") || strings.HasPrefix(r.pkg, "google.golang.org/protobuf") {
			t.Errorf("init %s runs in every tokenward process; want no prometheus client (docs/metrics.md)", r.pkg)
		}
	}
}

// BenchmarkCLISecretGet times whole processes against a real server:
// `tokenward secret get` of the client build (what `make build` installs
// as bin/tokenward) beside testdata/minget, the same authenticated GET by
// a minimal Go program (goal: ratio at most 1.2), the same command of the
// full build (full-secret-get), minget built static as the client is
// (minimal-static; ratio-static is the like-for-like ratio), the client's
// `--help` (start-up alone) and /bin/true. The arms run in rounds whose order reverses every other
// round, so bursts of load on a shared machine fall on all of them; each
// figure is the median over the rounds, and ratio is the median of the
// rounds' secret-get/minimal ratios. init-ms is the client's package
// initialisation before main (GODEBUG=inittrace=1 of --help, summed;
// goal: under 2 ms), init-own-ms the part of it in our packages.
func BenchmarkCLISecretGet(b *testing.B) {
	var logs bytes.Buffer
	_, addr, token := startServer(b, &logs)
	bin := filepath.Join(binDir, "tokenward-client")
	full := filepath.Join(binDir, "tokenward")
	minget := filepath.Join(b.TempDir(), "minget")
	mingetStatic := filepath.Join(b.TempDir(), "minget-static")
	for _, m := range []struct{ path, cgo string }{{minget, ""}, {mingetStatic, "0"}} {
		build := exec.Command("go", "build", "-o", m.path, "./testdata/minget")
		if m.cgo != "" {
			build.Env = append(os.Environ(), "CGO_ENABLED="+m.cgo)
		}
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("build minget: %v\n%s", err, out)
		}
	}
	env := append(os.Environ(), "TOKENWARD_ADDR="+addr, "TOKENWARD_TOKEN="+token)
	run := func(argv ...string) string {
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err != nil {
			b.Fatalf("%v: %v\n%s", argv, err, out)
		}
		return string(out)
	}
	run(bin, "project", "create", "payments", "--envs", "prod")
	value := strings.Repeat("v", 100)
	set := exec.Command(bin, "secret", "set", "payments/prod/KEY")
	set.Env, set.Stdin = env, strings.NewReader(value)
	if out, err := set.CombinedOutput(); err != nil {
		b.Fatalf("secret set: %v\n%s", err, out)
	}
	arms := []struct {
		name string
		argv []string
	}{
		{"secret-get", []string{bin, "secret", "get", "payments/prod/KEY"}},
		{"minimal", []string{minget, "payments/prod/KEY"}},
		{"full-secret-get", []string{full, "secret", "get", "payments/prod/KEY"}},
		{"minimal-static", []string{mingetStatic, "payments/prod/KEY"}},
		{"help", []string{bin, "--help"}},
		{"true", []string{"/bin/true"}},
	}
	for _, a := range arms[:4] {
		if got := run(a.argv...); got != value {
			b.Fatalf("%s printed %q; want the value", a.name, got)
		}
	}
	b.Run("processes", func(b *testing.B) {
		ms := make([][]float64, len(arms))
		var ratios, static, inits, own []float64
		for i := range b.N {
			for j := range arms {
				if i%2 == 1 {
					j = len(arms) - 1 - j
				}
				start := time.Now()
				run(arms[j].argv...)
				ms[j] = append(ms[j], float64(time.Since(start).Microseconds())/1000)
			}
			ratios, static = append(ratios, ms[0][i]/ms[1][i]), append(static, ms[0][i]/ms[3][i])
			var all, ours float64
			for _, r := range inittrace(b, "tokenward-client") {
				all += r.ms
				if r.pkg == "main" || strings.HasPrefix(r.pkg, "github.com/tokenward/tokenward") {
					ours += r.ms
				}
			}
			inits, own = append(inits, all), append(own, ours)
		}
		for j, a := range arms {
			b.ReportMetric(median(ms[j]), a.name+"-ms")
		}
		b.ReportMetric(median(ratios), "ratio")
		b.ReportMetric(median(static), "ratio-static")
		b.ReportMetric(median(inits), "init-ms")
		b.ReportMetric(median(own), "init-own-ms")
		b.ReportMetric(0, "ns/op") // whole rounds of six processes: not a useful figure
	})
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}
