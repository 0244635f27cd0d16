package loadgen

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenward/tokenward/internal/buildinfo"
)

// Schema names the JSON layout of Report. It changes only when a field
// changes meaning or goes away; fields may be added.
const Schema = "tokenward-bench/1"

// Report is what `tokenward bench` prints, as text or JSON. Every field is
// always present (null or empty when it does not apply), so runs from
// different commits compare field by field.
type Report struct {
	Schema    string         `json:"schema"`
	StartedAt time.Time      `json:"started_at"`
	Build     buildinfo.Info `json:"build"` // the tokenward build that ran the benchmark
	Machine   Machine        `json:"machine"`
	Config    RunConfig      `json:"config"`
	// ElapsedSeconds is the load's wall time, from the first request sent
	// to the last answer read.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// Operations holds one entry per operation of the mix, in mix order.
	Operations []OpReport `json:"operations"`
	// Total is every operation together.
	Total OpReport `json:"total"`
	// Baseline is the bare net/http handler of --baseline, driven the same
	// way in the same run (null without --baseline).
	Baseline *OpReport `json:"baseline"`
	// Servers are the tokenward servers the benchmark started (empty when
	// it loaded servers it did not start).
	Servers []ProcStats `json:"servers"`
	// Client is the benchmark's own process during the load.
	Client ProcStats `json:"client"`
}

// RunConfig is how the run was asked for.
type RunConfig struct {
	Mix             string  `json:"mix"`
	Concurrency     int     `json:"concurrency"`
	DurationSeconds float64 `json:"duration_seconds"` // 0 when Requests bounds the run
	Requests        int64   `json:"requests"`         // 0 when DurationSeconds bounds it
	Targets         int     `json:"targets"`
	Start           string  `json:"start"` // "", "sqlite" or "postgres": what the benchmark started
	Servers         int     `json:"servers"`
}

// OpReport is one operation's numbers.
type OpReport struct {
	Op       Op    `json:"op"`
	Weight   int   `json:"weight"`
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// RPS counts successful answers per second of the run's wall time.
	RPS float64 `json:"rps"`
	// Latency is of successful answers, in microseconds.
	Latency Latency `json:"latency_us"`
	// RatioToBaseline is RPS over the baseline's RPS (null without
	// --baseline). In a mix, the operations' ratios add up to the total's.
	RatioToBaseline *float64      `json:"ratio_to_baseline"`
	ErrorSamples    []ErrorSample `json:"error_samples"`
}

// Latency holds percentiles of a Histogram in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// ProcStats is the CPU and memory of one process over the load.
type ProcStats struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"` // user + system, during the load only
	// CPUPerRequestUS is CPUSeconds over every request of the load, in µs.
	CPUPerRequestUS float64 `json:"cpu_us_per_request"`
	// Cores is CPUSeconds over the load's wall time: 1.0 is one core busy.
	Cores        float64 `json:"cores"`
	RSSBytes     int64   `json:"rss_bytes"`      // at the end of the load
	PeakRSSBytes int64   `json:"peak_rss_bytes"` // the process's peak so far
}

// NewProcStats measures process pid after a load of requests requests over
// elapsed, given its CPU time cpuBefore at the start.
func NewProcStats(pid int, cpuBefore, elapsed time.Duration, requests int64) (ProcStats, error) {
	cpu, err := ProcCPU(pid)
	if err != nil {
		return ProcStats{}, err
	}
	rss, peak, err := ProcMemory(pid)
	if err != nil {
		return ProcStats{}, err
	}
	used := (cpu - cpuBefore).Seconds()
	ps := ProcStats{PID: pid, CPUSeconds: round(used, 2), RSSBytes: rss, PeakRSSBytes: peak}
	if requests > 0 {
		ps.CPUPerRequestUS = round(used*1e6/float64(requests), 1)
	}
	if elapsed > 0 {
		ps.Cores = round(used/elapsed.Seconds(), 2)
	}
	return ps, nil
}

// NewReport turns a Result of mix into a Report, with ratios to baseline
// (a Result of a mix of OpBaseline) when it is not nil.
func NewReport(mix Mix, res *Result, baseline *Result) *Report {
	r := &Report{Schema: Schema, ElapsedSeconds: round(res.Elapsed.Seconds(), 3), Servers: []ProcStats{}}
	var all Stats
	total := 0
	for _, w := range mix {
		st := res.Ops[w.Op]
		r.Operations = append(r.Operations, opReport(w.Op, w.Weight, st, res.Elapsed))
		all.add(st)
		total += w.Weight
	}
	r.Total = opReport("all", total, &all, res.Elapsed)
	if baseline != nil {
		b := opReport(OpBaseline, 0, baseline.Ops[OpBaseline], baseline.Elapsed)
		r.Baseline = &b
		for i := range r.Operations {
			r.Operations[i].RatioToBaseline = ratio(r.Operations[i].RPS, b.RPS)
		}
		r.Total.RatioToBaseline = ratio(r.Total.RPS, b.RPS)
	}
	return r
}

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	v := round(a/b, 3)
	return &v
}

// add counts o's requests, errors and latencies into s (no other goroutine
// may use either).
func (s *Stats) add(o *Stats) {
	s.Requests.Add(o.Requests.Load())
	s.Errors.Add(o.Errors.Load())
	for i := range o.Latency.buckets {
		s.Latency.buckets[i].Add(o.Latency.buckets[i].Load())
	}
	s.Latency.count.Add(o.Latency.count.Load())
	s.Latency.sum.Add(o.Latency.sum.Load())
	s.Latency.max.Store(max(s.Latency.max.Load(), o.Latency.max.Load()))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range o.ErrorSamples() {
		if s.samples == nil {
			s.samples = map[string]int64{}
		}
		s.samples[e.Message] += e.Count
	}
}

func opReport(op Op, weight int, st *Stats, elapsed time.Duration) OpReport {
	us := func(d time.Duration) float64 { return round(float64(d)/1e3, 1) }
	h := &st.Latency
	o := OpReport{
		Op: op, Weight: weight,
		Requests: st.Requests.Load(), Errors: st.Errors.Load(),
		Latency: Latency{
			P50: us(h.Quantile(0.50)), P90: us(h.Quantile(0.90)), P99: us(h.Quantile(0.99)),
			Max: us(h.Max()), Mean: us(h.Mean()),
		},
		ErrorSamples: st.ErrorSamples(),
	}
	if elapsed > 0 {
		o.RPS = round(float64(h.Count())/elapsed.Seconds(), 1)
	}
	return o
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// WriteText prints r as a table with the machine and processes below it.
func WriteText(w io.Writer, r *Report) error {
	c := r.Config
	bound := fmt.Sprintf("%gs", c.DurationSeconds)
	if c.Requests > 0 {
		bound = fmt.Sprintf("%d requests", c.Requests)
	}
	where := fmt.Sprintf("%d target(s)", c.Targets)
	if c.Start != "" {
		where = fmt.Sprintf("%d server(s) it started on %s", c.Servers, c.Start)
	}
	fmt.Fprintf(w, "tokenward bench %s: %d clients, %s, mix %s, %s; %.2fs elapsed\n\n",
		r.Build.Version, c.Concurrency, bound, c.Mix, where, r.ElapsedSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tweight\trequests\terrors\treq/s\tp50\tp90\tp99\tmax\t× bare\t")
	row := func(o OpReport) {
		ratio := "-"
		if o.RatioToBaseline != nil {
			ratio = fmt.Sprintf("%.3f", *o.RatioToBaseline)
		}
		weight := strconv.Itoa(o.Weight)
		if o.Op == OpBaseline {
			weight = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", o.Op, weight, o.Requests, o.Errors, o.RPS,
			fmtUS(o.Latency.P50), fmtUS(o.Latency.P90), fmtUS(o.Latency.P99), fmtUS(o.Latency.Max), ratio)
	}
	for _, o := range r.Operations {
		row(o)
	}
	row(r.Total)
	if r.Baseline != nil {
		row(*r.Baseline)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range append(r.Operations, r.Total) {
		for _, e := range o.ErrorSamples {
			if o.Op != "all" {
				fmt.Fprintf(w, "  %s errors: %d × %s\n", o.Op, e.Count, e.Message)
			}
		}
	}
	fmt.Fprintln(w)
	proc := func(name string, p ProcStats) {
		fmt.Fprintf(w, "%s (pid %d): CPU %.2fs (%.2f cores, %.0f µs/request), RSS %.1f MiB (peak %.1f MiB)\n", name, p.PID,
			p.CPUSeconds, p.Cores, p.CPUPerRequestUS, float64(p.RSSBytes)/(1<<20), float64(p.PeakRSSBytes)/(1<<20))
	}
	for i, s := range r.Servers {
		proc(fmt.Sprintf("server %d", i+1), s)
	}
	proc("bench client", r.Client)
	m := r.Machine
	_, err := fmt.Fprintf(w, "machine: %d CPUs, %s, load average %.2f %.2f %.2f\n", m.CPUs, orUnknown(m.CPUModel), m.LoadAvg[0], m.LoadAvg[1], m.LoadAvg[2])
	return err
}

func fmtUS(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "CPU model unknown"
	}
	return s
}
