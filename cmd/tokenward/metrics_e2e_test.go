//go:build !tokenward_client

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// documentedMetrics reads the table of docs/metrics.md: each
// `tokenward_*` metric and its type.
func documentedMetrics(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(tokenward_[a-z_]+)` \\| ([a-z]+) \\|")
	want := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		want[m[1]] = m[2]
	}
	if len(want) < 20 {
		t.Fatalf("docs/metrics.md lists %d tokenward_ metrics; want its table", len(want))
	}
	return want
}

// TestMetricsListenerServesDocumentedMetrics scrapes a real server's
// metrics listener: every metric docs/metrics.md lists is there with the
// type it gives (each # TYPE once), the page has no tokenward_ metric the
// table lacks, and the page is the text format Prometheus scrapes.
func TestMetricsListenerServesDocumentedMetrics(t *testing.T) {
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var logs bytes.Buffer
	// A secondary sink (the file) so that the sink metrics exist.
	_, addr, token := startServer(t, &logs, "--metrics-addr", metrics, "--audit-file", filepath.Join(t.TempDir(), "audit.jsonl"))
	req, _ := http.NewRequest("GET", addr+"/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/tokens: got %d; want 200", resp.StatusCode)
	}

	resp, err = http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.Header.Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8"; resp.StatusCode != http.StatusOK || got != want {
		t.Fatalf("GET /metrics: got %d, Content-Type %q; want 200, %q", resp.StatusCode, got, want)
	}
	types := map[string]string{}
	for line := range strings.Lines(string(body)) {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		if _, dup := types[f[2]]; dup {
			t.Errorf("# TYPE %s twice", f[2])
		}
		types[f[2]] = f[3]
	}
	want := documentedMetrics(t)
	for name, typ := range want {
		if types[name] != typ {
			t.Errorf("%s: got type %q; want %q (docs/metrics.md)", name, types[name], typ)
		}
	}
	for name := range types {
		if strings.HasPrefix(name, "tokenward_") && want[name] == "" {
			t.Errorf("%s is served but not in docs/metrics.md's table", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if types[name] == "" {
			t.Errorf("no %s: the Go runtime's and process's metrics are missing", name)
		}
	}
	if !strings.Contains(string(body), `tokenward_http_requests_total{code="200",route="GET /v1/tokens"} 1`) {
		t.Errorf("the request is not counted by its route; got:\n%s", body)
	}
	if strings.Contains(string(body), token) {
		t.Errorf("the metrics page holds the admin token")
	}
	// The server's own GOGC when the environment sets none (serverGCPercent).
	if os.Getenv("GOGC") == "" && !strings.Contains(string(body), fmt.Sprintf("\ngo_gc_gogc_percent %d\n", serverGCPercent)) {
		t.Errorf("want go_gc_gogc_percent %d (no GOGC in the environment); got:\n%s", serverGCPercent, body)
	}
}
