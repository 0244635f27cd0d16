package httpapi

import (
	"bytes"
	"io"
	"maps"
	"math"
	"net/http"
	runtimemetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/tokenward/tokenward/internal/buildinfo"
)

// Metrics instruments the API on a metrics.Set of the server's own (not the
// package's global default set, so tests and embedders get clean counts),
// and serves it with the Go runtime's and the process's metrics in the
// Prometheus text format. Labels are route patterns
// ("GET /v1/secrets/{project}/{env}/{name}"), never paths: a path holds
// project and secret names.
//
// Features add their metrics with Counter, Histogram, GaugeFunc (fixed
// names) or OnScrape (families whose label values are known only at
// scrape time). Every family gets # HELP and # TYPE lines.
type Metrics struct {
	Set *metrics.Set

	mu       sync.RWMutex
	help     map[string]string // HELP text by metric family
	requests map[routeCode]*metrics.Counter
	latency  map[string]*metrics.PrometheusHistogram
}

type routeCode struct {
	route string
	code  int
}

// requestBuckets are tokenward_http_request_duration_seconds' upper bounds
// (dashboards depend on them).
var requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30}

// NewMetrics makes the server's metrics with tokenward_build_info on a new
// set. It turns on the metrics package's # HELP/# TYPE lines
// (metrics.ExposeMetadata, a process-wide switch).
func NewMetrics() *Metrics {
	metrics.ExposeMetadata(true)
	m := &Metrics{
		Set:      metrics.NewSet(),
		help:     map[string]string{},
		requests: map[routeCode]*metrics.Counter{},
		latency:  map[string]*metrics.PrometheusHistogram{},
	}
	m.Help("tokenward_http_requests_total", "API requests by route pattern and status code.")
	m.Help("tokenward_http_request_duration_seconds", "API request latency by route pattern.")
	info := buildinfo.Get()
	m.GaugeFunc(`tokenward_build_info{commit="`+escapeLabel(info.Commit)+`",goversion="`+escapeLabel(info.GoVersion)+`",version="`+escapeLabel(info.Version)+`"}`,
		"Always 1; the labels name the running build.", func() float64 { return 1 })
	return m
}

// Help sets the # HELP text of a metric family (its name without labels).
func (m *Metrics) Help(family, text string) {
	m.mu.Lock()
	m.help[family] = text
	m.mu.Unlock()
}

// Counter registers a counter; name may carry labels (name{a="b"}).
func (m *Metrics) Counter(name, help string) *metrics.Counter {
	m.Help(family(name), help)
	return m.Set.NewCounter(name)
}

// Histogram registers a Prometheus histogram (_bucket{le=…}, _sum,
// _count) with the given upper bounds.
func (m *Metrics) Histogram(name, help string, buckets []float64) *metrics.PrometheusHistogram {
	m.Help(family(name), help)
	return m.Set.NewPrometheusHistogramExt(name, buckets)
}

// GaugeFunc registers a gauge whose value f computes at scrape time.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.Help(family(name), help)
	m.Set.NewGauge(name, f)
}

// OnScrape registers write, called at every scrape after the set's own
// metrics, for families whose label values are known only then (sinks,
// sources). write each family whole, with WriteFamily.
func (m *Metrics) OnScrape(write func(w io.Writer)) {
	m.Set.RegisterMetricsWriter(write)
}

// Metric types for WriteFamily.
const (
	CounterType = "counter"
	GaugeType   = "gauge"
)

// WriteFamily writes one metric family read at scrape time: its # HELP and
// # TYPE lines, then a sample per entry of values labelled label="key", in
// key order. With label "" the family is the single unlabelled values[""].
func WriteFamily(w io.Writer, name, typ, help, label string, values map[string]float64) {
	var b []byte
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, escapeHelp(help)...)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	b = append(b, '\n')
	for _, k := range slices.Sorted(maps.Keys(values)) {
		b = append(b, name...)
		if label != "" {
			b = append(b, '{')
			b = append(b, label...)
			b = append(b, `="`...)
			b = append(b, escapeLabel(k)...)
			b = append(b, `"}`...)
		}
		b = append(b, ' ')
		b = appendValue(b, values[k])
		b = append(b, '\n')
	}
	w.Write(b)
}

// WriteValue writes an unlabelled metric family read at scrape time.
func WriteValue(w io.Writer, name, typ, help string, v float64) {
	WriteFamily(w, name, typ, help, "", map[string]float64{"": v})
}

// goSettings are three runtime settings under the names client_golang
// gave them, which the metrics package names otherwise (go_gomaxprocs,
// go_memlimit_bytes) or not at all; kept for dashboards that use them.
var goSettings = [...]struct{ name, sample, help string }{
	{"go_gc_gogc_percent", "/gc/gogc:percent", "Heap size target percentage configured by the user, otherwise 100 (GOGC)."},
	{"go_gc_gomemlimit_bytes", "/gc/gomemlimit:bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64 (GOMEMLIMIT)."},
	{"go_sched_gomaxprocs_threads", "/sched/gomaxprocs:threads", "The current runtime.GOMAXPROCS setting."},
}

func writeGoSettings(w io.Writer) {
	var samples [len(goSettings)]runtimemetrics.Sample
	for i, g := range goSettings {
		samples[i].Name = g.sample
	}
	runtimemetrics.Read(samples[:])
	for i, g := range goSettings {
		if samples[i].Value.Kind() == runtimemetrics.KindUint64 {
			WriteValue(w, g.name, GaugeType, g.help, float64(samples[i].Value.Uint64()))
		}
	}
}

// appendValue writes integers without an exponent, as the metrics package
// does, and other values in Go's shortest form (Prometheus reads both).
func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// escapeLabel escapes a label value for the text format: backslash, double
// quote and line feed.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// escapeHelp escapes a # HELP text: backslash and line feed.
func escapeHelp(s string) string {
	if !strings.ContainsAny(s, "\\\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// family is a metric's name without its labels.
func family(name string) string {
	name, _, _ = strings.Cut(name, "{")
	return name
}

// Handler serves the set, then the Go runtime's and the process's metrics
// (go_*, process_*), in the Prometheus text format (version 0.0.4).
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.Expose(w)
	})
}

// Expose writes the exposition: the metrics package writes "# HELP name"
// without text, which is filled in here from the texts the families were
// registered with.
func (m *Metrics) Expose(w io.Writer) {
	var buf bytes.Buffer
	m.Set.WritePrometheus(&buf)
	metrics.WriteProcessMetrics(&buf)
	metrics.WriteFDMetrics(&buf)
	writeGoSettings(&buf)
	out := make([]byte, 0, buf.Len()+4096)
	m.mu.RLock()
	for line := range bytes.Lines(buf.Bytes()) {
		if name, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok && bytes.IndexByte(name, ' ') < 0 {
			name = bytes.TrimSuffix(name, []byte("\n"))
			if text, ok := m.help[string(name)]; ok {
				out = append(out, "# HELP "...)
				out = append(out, name...)
				out = append(out, ' ')
				out = append(out, escapeHelp(text)...)
				out = append(out, '\n')
				continue
			}
		}
		out = append(out, line...)
	}
	m.mu.RUnlock()
	w.Write(out)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets a streaming handler (the audit export) flush through.
func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serve runs h and counts the request under the pattern the mux matched
// (ServeMux sets r.Pattern on the request it is given).
func (m *Metrics) serve(h http.Handler, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	h.ServeHTTP(rec, r)
	route := r.Pattern
	if route == "" || route == "/" {
		route = "unmatched"
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	m.observe(route, rec.status, time.Since(start))
}

// observe counts one request; a route's and a code's metrics are made on
// their first request (a label set is not exposed before it has a value).
func (m *Metrics) observe(route string, code int, d time.Duration) {
	m.mu.RLock()
	c, h := m.requests[routeCode{route, code}], m.latency[route]
	m.mu.RUnlock()
	if c == nil || h == nil {
		c, h = m.routeMetrics(route, code)
	}
	c.Inc()
	h.Update(d.Seconds())
}

func (m *Metrics) routeMetrics(route string, code int) (*metrics.Counter, *metrics.PrometheusHistogram) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rc := routeCode{route, code}
	if m.requests[rc] == nil {
		// Labels in name order, as Prometheus clients write them.
		m.requests[rc] = m.Set.NewCounter(`tokenward_http_requests_total{code="` + strconv.Itoa(code) + `",route="` + escapeLabel(route) + `"}`)
	}
	if m.latency[route] == nil {
		m.latency[route] = m.Set.NewPrometheusHistogramExt(`tokenward_http_request_duration_seconds{route="`+escapeLabel(route)+`"}`, requestBuckets)
	}
	return m.requests[rc], m.latency[route]
}
