package client

import (
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/audit"
)

func TestAuditParams(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		q    audit.Query
		wait time.Duration
		want string
	}{
		{"empty", audit.Query{}, 0, ""},
		{"after", audit.Query{After: 7}, 0, "?after=7"},
		{"before newest", audit.Query{Before: 12, Newest: true, Limit: 50}, 0, "?before=12&limit=50&order=newest"},
		{"window", audit.Query{After: 3, Before: 9}, 0, "?after=3&before=9"},
		{"times and tail", audit.Query{Action: "secret.*", Since: t0, Until: t0.Add(time.Hour)}, 25 * time.Second,
			"?action=secret.%2A&since=2026-11-22T12%3A00%3A00Z&until=2026-11-22T13%3A00%3A00Z&wait=25s"},
	} {
		if got := auditParams(tc.q, tc.wait); got != tc.want {
			t.Errorf("%s: got %q; want %q", tc.name, got, tc.want)
		}
	}
}
