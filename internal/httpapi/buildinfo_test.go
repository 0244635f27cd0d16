package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/buildinfo"
	"github.com/tokenward/tokenward/internal/httpapi"
)

// TestHealthVersion: the health route names the running version, without a
// token, next to its status.
func TestHealthVersion(t *testing.T) {
	e := MustServe(t)
	body := e.mustDo(t, "", "GET", "/v1/health", nil, 200)
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("health body %q: %v", body, err)
	}
	want := map[string]string{"status": "ok", "version": buildinfo.Get().Version}
	if len(got) != len(want) || got["status"] != want["status"] || got["version"] != want["version"] || got["version"] == "" {
		t.Errorf("got %v; want %v", got, want)
	}
}

// TestMetricsBuildInfo: the metrics listener exposes tokenward_build_info.
func TestMetricsBuildInfo(t *testing.T) {
	m := httpapi.NewMetrics()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	info := buildinfo.Get()
	want := fmt.Sprintf("tokenward_build_info{commit=%q,goversion=%q,version=%q} 1\n", info.Commit, info.GoVersion, info.Version)
	if !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %q; got:\n%s", want, body)
	}
}
