package loadgen

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/buildinfo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedReport is a report of made-up measurements, the same every time.
func fixedReport(t *testing.T) *Report {
	t.Helper()
	mix := mustMix(t, "read=90,write=10")
	stats := func(requests int64, errs []string, lat ...time.Duration) *Stats {
		st := &Stats{}
		st.Requests.Store(requests)
		for _, e := range errs {
			st.fail(e)
		}
		for _, d := range lat {
			st.Latency.Record(d)
		}
		return st
	}
	var reads []time.Duration
	for i := range 90 {
		reads = append(reads, time.Duration(100+i*10)*time.Microsecond)
	}
	res := &Result{Elapsed: 2 * time.Second, Ops: map[Op]*Stats{
		OpRead:  stats(90, nil, reads...),
		OpWrite: stats(10, []string{"HTTP 409 Conflict (ECONFLICT)"}, 2*time.Millisecond, 3*time.Millisecond, 4*time.Millisecond, 5*time.Millisecond, 6*time.Millisecond, 7*time.Millisecond, 8*time.Millisecond, 9*time.Millisecond, 1500*time.Millisecond),
	}}
	var bare []time.Duration
	for range 1000 {
		bare = append(bare, 50*time.Microsecond)
	}
	base := &Result{Elapsed: 2 * time.Second, Ops: map[Op]*Stats{OpBaseline: stats(1000, nil, bare...)}}
	r := NewReport(mix, res, base)
	r.StartedAt = time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)
	r.Build = buildinfo.Info{Version: "v0.0.0-test", Commit: "0123456789abcdef", GoVersion: "go1.26"}
	r.Machine = Machine{CPUs: 2, CPUModel: "AMD EPYC 7B13", LoadAvg: [3]float64{3.1, 2.5, 2}, OS: "linux", Arch: "amd64"}
	r.Config = RunConfig{Mix: mix.String(), Concurrency: 4, DurationSeconds: 2, Targets: 1, Start: "sqlite", Servers: 1}
	r.Servers = []ProcStats{{PID: 4242, CPUSeconds: 1.5, CPUPerRequestUS: 15000, Cores: 0.75, RSSBytes: 40 << 20, PeakRSSBytes: 42 << 20}}
	r.Client = ProcStats{PID: 4241, CPUSeconds: 0.2, CPUPerRequestUS: 2000, Cores: 0.1, RSSBytes: 20 << 20, PeakRSSBytes: 21 << 20}
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestReportGolden pins both output formats; the JSON file is the schema
// runs are compared by, so a change to it is a change of Schema.
func TestReportGolden(t *testing.T) {
	r := fixedReport(t)
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", text.Bytes())
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", append(js, '\n'))
}

func TestReportNumbers(t *testing.T) {
	r := fixedReport(t)
	read, write := r.Operations[0], r.Operations[1]
	checks := []struct {
		name      string
		got, want float64
	}{
		{"read rps", read.RPS, 45},       // 90 successes in 2 s
		{"write rps", write.RPS, 4.5},    // 9 of 10 succeeded
		{"total rps", r.Total.RPS, 49.5}, // both
		{"baseline rps", r.Baseline.RPS, 500},
		{"read ratio", *read.RatioToBaseline, 0.09},
		{"total ratio", *r.Total.RatioToBaseline, 0.099},
		{"read p50 µs", read.Latency.P50, 540}, // the 45th of 100..990 µs
		{"write max µs", write.Latency.Max, 1.5e6},
		{"total errors", float64(r.Total.Errors), 1},
		{"total requests", float64(r.Total.Requests), 100},
	}
	for _, c := range checks {
		// Quantiles are bucket tops: within 1/128 above the exact value.
		if c.got < c.want || c.got > c.want*(1+1.0/subN) {
			t.Errorf("%s: got %v; want %v", c.name, c.got, c.want)
		}
	}
	if len(r.Total.ErrorSamples) != 1 || r.Total.ErrorSamples[0].Count != 1 {
		t.Errorf("total error samples: got %v; want the write's one", r.Total.ErrorSamples)
	}

	noBase := NewReport(mustMix(t, "read=1"), &Result{Elapsed: time.Second, Ops: map[Op]*Stats{OpRead: {}}}, nil)
	if noBase.Baseline != nil || noBase.Operations[0].RatioToBaseline != nil {
		t.Errorf("without a baseline: got %+v; want no baseline and no ratio", noBase)
	}
	js, _ := json.Marshal(noBase)
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"baseline", "servers", "client", "machine", "total"} {
		if _, ok := back[key]; !ok {
			t.Errorf("JSON without a baseline has no %q key; every key is always there", key)
		}
	}
}
