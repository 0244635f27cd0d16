package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/httpapi"
)

// sample is one parsed sample line of the text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// parseExposition reads the Prometheus text format (version 0.0.4) as
// strictly as Prometheus does where it matters to a scrape: a family's
// # TYPE comes once and before its samples, a family's lines are not
// split, label values use only the \\, \" and \n escapes, values parse.
// It returns the families' types and HELP texts and the samples.
func parseExposition(t testing.TB, body string) (types, help map[string]string, samples []sample) {
	t.Helper()
	types, help = map[string]string{}, map[string]string{}
	if body != "" && !strings.HasSuffix(body, "\n") {
		t.Fatalf("exposition does not end with a line feed")
	}
	done := map[string]bool{} // families whose block has ended
	current := ""
	enter := func(family string, line string) {
		if family == current {
			return
		}
		if done[family] {
			t.Errorf("family %s split: %q comes after other families", family, line)
		}
		if current != "" {
			done[current] = true
		}
		current = family
	}
	for line := range strings.Lines(body) {
		line = strings.TrimSuffix(line, "\n")
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			kind, rest, _ := strings.Cut(rest, " ")
			name, text, _ := strings.Cut(rest, " ")
			meta := help
			switch {
			case kind == "TYPE":
				meta = types
				switch text {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					t.Errorf("bad TYPE: %q", line)
				}
			case kind != "HELP":
				t.Errorf("unexpected comment %q", line)
				continue
			}
			if !metricName.MatchString(name) {
				t.Errorf("%s of bad name: %q", kind, line)
			}
			if _, dup := meta[name]; dup {
				t.Errorf("second %s of %s", kind, name)
			}
			meta[name] = text
			enter(name, line)
			continue
		}
		if line == "" {
			t.Errorf("empty line")
			continue
		}
		s := parseSample(t, line)
		family := s.name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(s.name, suffix); ok && (types[base] == "histogram" || types[base] == "summary") {
				family = base
			}
		}
		if types[family] == "" {
			t.Errorf("sample before (or without) the TYPE of %s: %q", family, line)
		}
		enter(family, line)
		samples = append(samples, s)
	}
	return types, help, samples
}

func parseSample(t testing.TB, line string) sample {
	t.Helper()
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		t.Fatalf("sample without value: %q", line)
	}
	s.name, line = line[:i], line[i:]
	if !metricName.MatchString(s.name) {
		t.Errorf("bad metric name in %q", s.name)
	}
	if strings.HasPrefix(line, "{") {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			name, rest, ok := strings.Cut(line, `="`)
			if !ok || !metricName.MatchString(name) {
				t.Fatalf("bad label in %q", line)
			}
			var v strings.Builder
			for {
				if rest == "" {
					t.Fatalf("unterminated label value of %s", name)
				}
				c := rest[0]
				rest = rest[1:]
				if c == '"' {
					break
				}
				if c == '\n' {
					t.Fatalf("raw line feed in label %s", name)
				}
				if c == '\\' {
					if rest == "" {
						t.Fatalf("unterminated escape in label %s", name)
					}
					switch rest[0] {
					case '\\':
						v.WriteByte('\\')
					case '"':
						v.WriteByte('"')
					case 'n':
						v.WriteByte('\n')
					default:
						t.Fatalf("escape \\%c in label %s: Prometheus knows only \\\\, \\\" and \\n", rest[0], name)
					}
					rest = rest[1:]
					continue
				}
				v.WriteByte(c)
			}
			if _, dup := s.labels[name]; dup {
				t.Errorf("label %s twice", name)
			}
			s.labels[name] = v.String()
			rest = strings.TrimPrefix(rest, ",")
			line = strings.TrimLeft(rest, " ")
		}
		line = line[1:]
	}
	value, ok := strings.CutPrefix(line, " ")
	if !ok {
		t.Fatalf("no space before the value of %s: %q", s.name, line)
	}
	var err error
	if s.value, err = strconv.ParseFloat(value, 64); err != nil {
		t.Errorf("value of %s: %v", s.name, err)
	}
	return s
}

func scrape(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got, want := resp.Header.Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8"; got != want {
		t.Errorf("Content-Type: got %q; want %q", got, want)
	}
	return string(body)
}

// TestMetricsExposition: each kind of metric a feature can add comes out in
// the text format Prometheus scrapes, with its HELP text and TYPE, label
// values escaped, beside the Go runtime's and the process's metrics; and a
// second Metrics shares nothing with the first.
func TestMetricsExposition(t *testing.T) {
	m := httpapi.NewMetrics()
	m.Counter(`test_events_total{kind="a"}`, "Events.").Add(3)
	h := m.Histogram("test_wait_seconds", "Waits.", []float64{.001, .01, 1})
	h.Update(0.005)
	h.Update(2)
	m.GaugeFunc("test_level", "Level.", func() float64 { return 1.5 })
	m.OnScrape(func(w io.Writer) {
		httpapi.WriteFamily(w, "test_sinks", httpapi.GaugeType, "Back\\slash,\nline feed.", "sink", map[string]float64{"we\"ird\\\n": 2, "file": 1})
		httpapi.WriteValue(w, "test_big_total", httpapi.CounterType, "Big.", 1e18)
	})
	body := scrape(t, m.Handler())
	for _, want := range []string{
		"# HELP test_events_total Events.\n# TYPE test_events_total counter\ntest_events_total{kind=\"a\"} 3\n",
		"# HELP test_wait_seconds Waits.\n# TYPE test_wait_seconds histogram\n" +
			"test_wait_seconds_bucket{le=\"0.001\"} 0\ntest_wait_seconds_bucket{le=\"0.01\"} 1\ntest_wait_seconds_bucket{le=\"1\"} 1\ntest_wait_seconds_bucket{le=\"+Inf\"} 2\n" +
			"test_wait_seconds_sum 2.005\ntest_wait_seconds_count 2\n",
		"# HELP test_level Level.\n# TYPE test_level gauge\ntest_level 1.5\n",
		"# HELP test_sinks Back\\\\slash,\\nline feed.\n# TYPE test_sinks gauge\ntest_sinks{sink=\"file\"} 1\ntest_sinks{sink=\"we\\\"ird\\\\\\n\"} 2\n",
		"# HELP test_big_total Big.\n# TYPE test_big_total counter\ntest_big_total 1e+18\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks\n%s\ngot:\n%s", want, body)
		}
	}
	types, help, samples := parseExposition(t, body)
	for name, want := range map[string]string{
		"tokenward_build_info": "gauge",
		"test_sinks":           "gauge",
		// The Go runtime's and the process's, some under client_golang's names.
		"go_goroutines": "gauge", "go_gc_duration_seconds": "summary", "go_memstats_heap_alloc_bytes": "gauge",
		"go_gc_gogc_percent": "gauge", "go_gc_gomemlimit_bytes": "gauge", "go_sched_gomaxprocs_threads": "gauge",
		"process_cpu_seconds_total": "counter", "process_resident_memory_bytes": "gauge",
		"process_open_fds": "gauge", "process_max_fds": "gauge", "process_start_time_seconds": "gauge",
	} {
		if types[name] != want {
			t.Errorf("TYPE of %s: got %q; want %q", name, types[name], want)
		}
	}
	if got, want := help["test_sinks"], `Back\\slash,\nline feed.`; got != want {
		t.Errorf("HELP of test_sinks: got %q; want %q", got, want)
	}
	var sinks []string
	for _, s := range samples {
		if s.name == "test_sinks" {
			sinks = append(sinks, fmt.Sprintf("%q=%g", s.labels["sink"], s.value))
		}
	}
	if got, want := strings.Join(sinks, " "), `"file"=1 "we\"ird\\\n"=2`; got != want {
		t.Errorf("test_sinks read back: got %s; want %s", got, want)
	}

	// Its own set: another Metrics starts clean.
	if other := scrape(t, httpapi.NewMetrics().Handler()); strings.Contains(other, "test_") {
		t.Errorf("a new Metrics holds the first one's metrics:\n%s", other)
	}
}

// FuzzWriteFamily: any label value (a sink's or a source's name) comes out
// escaped so that the exposition parses and reads back as the value.
func FuzzWriteFamily(f *testing.F) {
	for _, s := range []string{"file", `a"b`, `a\b`, "a\nb", "\\n", "é\x00\t", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var b strings.Builder
		httpapi.WriteFamily(&b, "fuzz_total", httpapi.CounterType, "Fuzz.", "label", map[string]float64{v: 7})
		_, _, samples := parseExposition(t, b.String())
		if len(samples) != 1 || samples[0].labels["label"] != v || samples[0].value != 7 {
			t.Fatalf("got %+v from\n%s; want label %q, value 7", samples, b.String(), v)
		}
	})
}
