package loadgen

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, in string
		want     time.Duration
		wantErr  string
	}{
		{"plain", "1234 (tokenward) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 8 0 100 0 0", 3250 * time.Millisecond, ""},
		// The name is chosen by the process and may hold ") (" and spaces.
		{"hostile name", "99 (a) b) (c d) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0", 100 * time.Millisecond, ""},
		{"no name", "99 a R 1", 0, "no command name"},
		{"short", "99 (x) R 1 2 3", 0, "fields after the command name"},
		{"not numbers", "99 (x) R 1 2 3 4 5 6 7 8 9 10 u s", 0, "not numbers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.in))
			checkParsed(t, got, err, tc.want, tc.wantErr)
		})
	}
}

// checkParsed fails t unless a parser returned want, or, with wantErr set,
// an error containing it.
func checkParsed[T comparable](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("got %+v, %v; want an error containing %q", got, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\ttokenward\nVmPeak:\t 900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t8\n"
	rss, peak, err := parseStatusMemory([]byte(status))
	if err != nil || rss != 40<<20 || peak != 50<<20 {
		t.Fatalf("got %d, %d, %v; want %d, %d", rss, peak, err, 40<<20, 50<<20)
	}
	if _, _, err := parseStatusMemory([]byte("Name:\tx\nVmHWM:\t1 kB\n")); err == nil || !strings.Contains(err.Error(), "no VmRSS") {
		t.Errorf("without VmRSS: got %v; want an error naming it", err)
	}
	if _, _, err := parseStatusMemory([]byte("VmRSS:\tlots kB\nVmHWM:\t1 kB\n")); err == nil {
		t.Errorf("VmRSS not a number: got no error")
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     CPUTimes
		wantErr  string
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// guest times are inside user and nice, so not added again.
		{"plain", "cpu  100 5 50 800 20 0 15 10 7 1\ncpu0 50 2 25 400 10 0 7 5 3 0\n", CPUTimes{Total: 1000, Idle: 820}, ""},
		{"no guest fields", "cpu 1 2 3 4 5 6 7 8\n", CPUTimes{Total: 36, Idle: 9}, ""},
		{"per-cpu line first", "cpu0 1 2 3 4 5 6 7 8\n", CPUTimes{}, "not the cpu line"},
		{"empty", "", CPUTimes{}, "not the cpu line"},
		{"short", "cpu 1 2 3 4\n", CPUTimes{}, "want at least 8"},
		{"not numbers", "cpu 1 2 3 x 5 6 7 8\n", CPUTimes{}, "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			checkParsed(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestIdleShare(t *testing.T) {
	a := CPUTimes{Total: 1000, Idle: 300}
	tests := []struct {
		name string
		b    CPUTimes
		want float64
	}{
		{"a quarter idle", CPUTimes{Total: 1400, Idle: 400}, 0.25},
		{"all idle", CPUTimes{Total: 1200, Idle: 500}, 1},
		{"no time passed", a, 0},
		{"counters went back", CPUTimes{Total: 900, Idle: 200}, 0},
	}
	for _, tc := range tests {
		if got := IdleShare(a, tc.b); got != tc.want {
			t.Errorf("%s: IdleShare = %v; want %v", tc.name, got, tc.want)
		}
	}
}

// TestProcOfThisProcess reads the real /proc of the test process.
func TestProcOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the counter moves (it counts 10 ms ticks).
	for after := before; after == before; {
		x := 0
		for i := range 10_000_000 {
			x += i
		}
		_ = x
		if after, err = ProcCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after < before {
			t.Fatalf("CPU time went back: %v then %v", before, after)
		}
	}
	rss, peak, err := ProcMemory(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Fatalf("memory: got rss %d, peak %d, %v; want 0 < rss <= peak", rss, peak, err)
	}
	if _, err := ProcCPU(1 << 30); err == nil {
		t.Errorf("a process that does not exist: got no error")
	}
	m, err := ReadCPUTimes()
	if err != nil || m.Total == 0 || m.Idle > m.Total {
		t.Errorf("machine CPU times: got %+v, %v; want 0 <= idle <= total, total > 0", m, err)
	}
}

func TestMachineParsers(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got := cpuModel([]byte(cpuinfo)); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel: got %q; want %q", got, "AMD EPYC 7B13")
	}
	if got := cpuModel([]byte("processor: 0\n")); got != "" {
		t.Errorf("cpuModel without a model name: got %q; want empty", got)
	}
	if got := loadAvg([]byte("3.14 2.50 1.00 3/512 12345\n")); got != [3]float64{3.14, 2.5, 1} {
		t.Errorf("loadAvg: got %v", got)
	}
}
