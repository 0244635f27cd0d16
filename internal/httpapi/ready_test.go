package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/httpapi"
)

// TestReadiness: /v1/ready and /readyz answer 200 while the store's
// database answers and 503 with a fixed reason once it does not, while
// liveness (/v1/health, /healthz) stays 200; none needs a token, and the
// tokenward_database_up gauge follows.
func TestReadiness(t *testing.T) {
	e := MustServe(t)
	m := httpapi.NewMetrics()
	e.api.RegisterReadiness(m)
	up := func() string {
		t.Helper()
		var b strings.Builder
		m.Expose(&b)
		var got []string
		for line := range strings.Lines(b.String()) {
			if strings.HasPrefix(line, "tokenward_database_up") {
				got = append(got, strings.TrimSuffix(line, "\n"))
			}
		}
		if len(got) != 1 {
			t.Fatalf("got %q; want one tokenward_database_up sample in:\n%s", got, b.String())
		}
		return got[0]
	}
	check := func(path string, want int, wantBody map[string]string) {
		t.Helper()
		got, b := e.do(t, "", "GET", path, nil)
		var body map[string]string
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("GET %s: body %q: %v", path, b, err)
		}
		if got != want {
			t.Errorf("GET %s: got %d %s; want %d", path, got, b, want)
		}
		for k, v := range wantBody {
			if body[k] != v {
				t.Errorf("GET %s: got %s=%q; want %q", path, k, body[k], v)
			}
		}
		if !strings.Contains(path, "health") && len(body) != len(wantBody) { // health also names the version
			t.Errorf("GET %s: got %v; want exactly %v", path, body, wantBody)
		}
	}
	ready := map[string]string{"status": "ready"}
	unready := map[string]string{"status": "unavailable", "reason": "database unreachable"}
	check("/v1/ready", 200, ready)
	check("/readyz", 200, ready)
	check("/v1/health", 200, map[string]string{"status": "ok"})
	check("/healthz", 200, map[string]string{"status": "ok"})
	if got, want := up(), "tokenward_database_up 1"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}

	// The database goes away.
	e.core.Store.(io.Closer).Close()
	check("/v1/ready", http.StatusServiceUnavailable, unready)
	check("/readyz", http.StatusServiceUnavailable, unready)
	check("/v1/health", 200, map[string]string{"status": "ok"})
	check("/healthz", 200, map[string]string{"status": "ok"})
	if got, want := up(), "tokenward_database_up 0"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestAuditRefusedNamesUnreachableDatabase: a request the audit hook
// cannot record is refused with 503 (fail-closed); when the hook's cause
// is a database that cannot be reached, the message says so.
func TestAuditRefusedNamesUnreachableDatabase(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		want      string
		wantLevel string // of the log line; an outage is logged once elsewhere
	}{
		{"database unreachable", fmt.Errorf("the audit store is not recording entries: %w", tokenward.Errorf(tokenward.EUNAVAILABLE, "database unavailable; retry")),
			"the audit log cannot record this request; refused: database unavailable; retry", "DEBUG"},
		{"anything else", errors.New("audit_entries refuses inserts"), "the audit log cannot record this request; refused", "ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustServe(t)
			var logs strings.Builder
			e.api.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			e.api.Audit = func(context.Context, *tokenward.AuditEntry) error { return tt.err }
			got, b := e.do(t, e.admin, "GET", "/v1/projects", nil)
			var body api.ErrorBody
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if got != http.StatusServiceUnavailable || body.Error.Code != tokenward.EUNAVAILABLE || body.Error.Message != tt.want {
				t.Errorf("got %d %+v; want 503 unavailable %q", got, body.Error, tt.want)
			}
			if want := "level=" + tt.wantLevel + ` msg="audit record failed; refusing request"`; !strings.Contains(logs.String(), want) {
				t.Errorf("log: got %q; want %q", logs.String(), want)
			}
		})
	}
}
