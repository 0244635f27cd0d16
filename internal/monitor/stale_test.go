package monitor

import (
	"slices"
	"testing"
	"time"
)

func TestPlanStale(t *testing.T) {
	r := BuildReport(reportInput()) // stale: tok_idle (45 days), tok_never (never used)
	now := reportNow
	tests := []struct {
		name     string
		notified map[string]time.Time
		policy   StalePolicy
		want     []string // step:token
	}{
		{"first run: notify both", nil, StalePolicy{Revoke: true},
			[]string{"notify:tok_idle", "notify:tok_never"}},
		{"notice period not over: nothing", map[string]time.Time{"tok_idle": now.Add(-13 * day), "tok_never": now.Add(-13 * day)}, StalePolicy{Revoke: true},
			nil},
		{"notice period over, revoke policy: revoke", map[string]time.Time{"tok_idle": now.Add(-14 * day), "tok_never": now.Add(-20 * day)}, StalePolicy{Revoke: true},
			[]string{"revoke:tok_idle", "revoke:tok_never"}},
		{"notice period over, alert-only policy: nothing", map[string]time.Time{"tok_idle": now.Add(-30 * day)}, StalePolicy{},
			[]string{"notify:tok_never"}},
		{"used after the notice: clear, never revoke", map[string]time.Time{"tok_idle": now.Add(-50 * day)}, StalePolicy{Revoke: true},
			[]string{"clear:tok_idle", "notify:tok_never"}},
		{"notified token no longer stale: clear", map[string]time.Time{"tok_busy": now.Add(-3 * day)}, StalePolicy{Revoke: true},
			[]string{"clear:tok_busy", "notify:tok_idle", "notify:tok_never"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range PlanStale(r, tc.notified, now, tc.policy) {
				got = append(got, string(a.Step)+":"+a.TokenID)
				if a.Why == "" {
					t.Errorf("%s %s: got no reason; want one", a.Step, a.TokenID)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}
