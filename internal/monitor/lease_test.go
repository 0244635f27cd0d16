package monitor

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// TestLeaseBurst: a job whose token has LeaseBurst leases made within
// LeaseWindow is an anomaly; fewer, or spread wider, are not; refused
// lease requests do not count. The count reaches usage, the snapshot and
// the report.
func TestLeaseBurst(t *testing.T) {
	jit := &tokenward.Token{ID: "tok_job", Name: "job", Kind: tokenward.TokenJIT, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	slow := &tokenward.Token{ID: "tok_slow", Name: "slow", Kind: tokenward.TokenService, CreatedAt: t0}
	m := mustMonitor(t, Config{LeaseBurst: 5, LeaseWindow: 10 * time.Minute}, jit, slow)
	var tr trace
	var fired []Anomaly
	for i := range 4 {
		fired = append(fired, m.Observe(tr.add(t0.Add(time.Duration(i)*time.Second), "tok_job", ActionLeaseCreate, "acme/prod/db", tokenward.OutcomeAllowed, "10.0.0.1"))...)
		// a refused one (the cap, a missing grant) does not count
		fired = append(fired, m.Observe(tr.add(t0.Add(time.Duration(i)*time.Second), "tok_job", ActionLeaseCreate, "acme/prod/db", tokenward.OutcomeDenied, "10.0.0.1"))...)
		// one every 3 minutes: 5 take 12 minutes, beyond the window
		fired = append(fired, m.Observe(tr.add(t0.Add(time.Duration(i)*3*time.Minute), "tok_slow", ActionLeaseCreate, "acme/prod/db", tokenward.OutcomeAllowed, "10.0.0.2"))...)
	}
	fired = append(fired, m.Observe(tr.add(t0.Add(12*time.Minute), "tok_slow", ActionLeaseCreate, "acme/prod/db", tokenward.OutcomeAllowed, "10.0.0.2"))...)
	for _, a := range fired {
		if a.Rule == RuleLeaseBurst {
			t.Fatalf("fired %s for %s before the burst", a.Rule, a.TokenID)
		}
	}
	got := m.Observe(tr.add(t0.Add(5*time.Second), "tok_job", ActionLeaseCreate, "acme/prod/db", tokenward.OutcomeAllowed, "10.0.0.1"))
	var burst *Anomaly
	for i := range got {
		if got[i].Rule == RuleLeaseBurst {
			burst = &got[i]
		}
	}
	if burst == nil || burst.TokenID != "tok_job" || burst.Severity != SeverityHigh || len(burst.Evidence) != 5 || !strings.Contains(burst.Explanation, "5 leases") {
		t.Fatalf("the fifth lease within the window: got %+v; want lease_burst for tok_job with 5 pieces of evidence", got)
	}
	if u, _ := m.Usage("tok_job"); u.Leases != 5 {
		t.Fatalf("usage: got %d leases; want 5", u.Leases)
	}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := mustMonitor(t, Config{})
	if err := m2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	u1, _ := m2.Usage("tok_job")
	u2, _ := m2.Usage("tok_slow")
	if u1.Leases != 5 || u2.Leases != 5 {
		t.Fatalf("restored: got %d and %d leases; want 5 and 5", u1.Leases, u2.Leases)
	}
	other := &tokenward.Token{ID: "tok_none", Name: "none", Kind: tokenward.TokenService, CreatedAt: t0}
	r := BuildReport(ReportInput{Now: t0.Add(time.Hour), Tokens: []*tokenward.Token{slow, jit, other},
		Usage: map[string]TokenUsage{"tok_job": u1, "tok_slow": {Leases: 7}}})
	want := []LeaseVolume{{ID: "tok_slow", Name: "slow", Kind: "service", Leases: 7}, {ID: "tok_job", Name: "job", Kind: "jit", Leases: 5}}
	if len(r.LeaseVolume) != 2 || r.LeaseVolume[0] != want[0] || r.LeaseVolume[1] != want[1] {
		t.Fatalf("report: got %+v; want %+v", r.LeaseVolume, want)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Leases of dynamic sources, by token (2)") || !strings.Contains(b.String(), "job   tok_job   jit      5") {
		t.Fatalf("report text:\n%s", b.String())
	}
}
