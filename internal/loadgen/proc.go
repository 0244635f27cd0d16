package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// ProcCPU returns the user plus system CPU time process pid has used, from
// /proc/PID/stat (Linux only).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d (needs Linux /proc): %w", pid, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/PID/stat line. The command name (field 2) is in parentheses and may
// hold spaces and parentheses, so fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name; want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: utime %q, stime %q are not numbers", f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil // #nosec G115 -- CPU clock ticks of one process, far below 2^63
}

// ProcMemory returns the resident set size of process pid now and at its
// peak, in bytes (VmRSS and VmHWM of /proc/PID/status, Linux only).
func ProcMemory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("memory of process %d (needs Linux /proc): %w", pid, err)
	}
	return parseStatusMemory(b)
}

func parseStatusMemory(b []byte) (rss, peak int64, err error) {
	field := func(name string) (int64, error) {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("/proc status: %s %q is not a size in kB", name, strings.TrimSpace(v))
				}
				return kb << 10, nil
			}
		}
		return 0, fmt.Errorf("/proc status: no %s", name)
	}
	if rss, err = field("VmRSS"); err != nil {
		return 0, 0, err
	}
	if peak, err = field("VmHWM"); err != nil {
		return 0, 0, err
	}
	return rss, peak, nil
}

// CPUTimes are the machine's CPU times since boot, in clock ticks, from the
// first line of /proc/stat: all of them, and those spent idle (idle and
// iowait).
type CPUTimes struct {
	Total, Idle uint64
}

// ReadCPUTimes reads the machine's CPU times (Linux only).
func ReadCPUTimes() (CPUTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}, fmt.Errorf("machine CPU times (needs Linux /proc): %w", err)
	}
	return parseProcStat(b)
}

// parseProcStat reads the "cpu" line: user nice system idle iowait irq
// softirq steal, then guest and guest_nice, which user and nice include
// already and are left out.
func parseProcStat(b []byte) (CPUTimes, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "cpu" {
		return CPUTimes{}, fmt.Errorf("/proc/stat: the first line is not the cpu line")
	}
	if len(f) < 9 {
		return CPUTimes{}, fmt.Errorf("/proc/stat: %d times on the cpu line; want at least 8", len(f)-1)
	}
	var t CPUTimes
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return CPUTimes{}, fmt.Errorf("/proc/stat: cpu time %q is not a number", v)
		}
		t.Total += n
		if i == 3 || i == 4 {
			t.Idle += n
		}
	}
	return t, nil
}

// IdleShare is the share of the machine's CPU time spent idle from a to b,
// 0 to 1 (0 when no time passed).
func IdleShare(a, b CPUTimes) float64 {
	if b.Total <= a.Total || b.Idle < a.Idle {
		return 0
	}
	return float64(b.Idle-a.Idle) / float64(b.Total-a.Total)
}

// Machine describes where a run happened, so numbers are read with it.
type Machine struct {
	CPUs     int        `json:"cpus"`
	CPUModel string     `json:"cpu_model"`
	LoadAvg  [3]float64 `json:"load_avg"` // 1, 5 and 15 minutes, at the start of the run
	OS       string     `json:"os"`
	Arch     string     `json:"arch"`
}

// ReadMachine reads the CPU count, the CPU model from /proc/cpuinfo and the
// load average from /proc/loadavg; what it cannot read stays empty.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = cpuModel(b)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = loadAvg(b)
	}
	return m
}

func cpuModel(cpuinfo []byte) string {
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAvg(b []byte) [3]float64 {
	var out [3]float64
	for i, f := range strings.Fields(string(b)) {
		if i == 3 {
			break
		}
		out[i], _ = strconv.ParseFloat(f, 64)
	}
	return out
}
