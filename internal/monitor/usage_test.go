package monitor

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

func TestUsage(t *testing.T) {
	m := mustMonitor(t, Config{})
	var tr trace
	for d := range 3 {
		for i := range d + 1 {
			tr.add(t0.Add(time.Duration(d)*24*time.Hour+time.Duration(i)*time.Minute), "tok_a", "secret.read", "p/prod/A", allowed, "10.0.1.5")
		}
	}
	tr.add(t0.Add(3*24*time.Hour), "tok_b", "secret.read", "p/prod/A", allowed, "10.0.2.9")
	tr.add(t0.Add(3*24*time.Hour), "tok_b", "secret.read", "p/prod/B", denied, "10.0.2.9")
	// Forty days later: only the last 31 days are listed.
	tr.add(t0.Add(40*24*time.Hour), "tok_a", "secret.list", "p/prod/", allowed, "10.0.1.6")
	replay(m, tr.entries)

	u, ok := m.Usage("tok_a")
	wantDaily := []DayCount{{"2026-04-11", 1}}
	if !ok || u.Requests != 7 || u.LastIP != "10.0.1.6" || !slices.Equal(u.Daily, wantDaily) {
		t.Errorf("tok_a usage: got %+v; want 7 requests, last IP 10.0.1.6, daily %v", u, wantDaily)
	}
	if len(u.Uses) != 2 || u.Uses[0].Action != "secret.list" || u.Uses[1].Resource != "p/prod/A" {
		t.Errorf("tok_a uses: got %+v; want secret.list p/prod/ and secret.read p/prod/A", u.Uses)
	}
	s, ok := m.SecretUsage("p/prod/A")
	wantS := []DayCount{{"2026-03-02", 1}, {"2026-03-03", 2}, {"2026-03-04", 3}, {"2026-03-05", 1}}
	if !ok || s.LastTokenID != "tok_b" || s.LastIP != "10.0.2.9" || !slices.Equal(s.Daily, wantS) {
		t.Errorf("secret usage: got %+v; want last tok_b from 10.0.2.9, daily %v", s, wantS)
	}
	if _, ok := m.SecretUsage("p/prod/B"); ok {
		t.Errorf("a denied read counted as secret usage; want only allowed reads")
	}
}

func TestJITByCIFacts(t *testing.T) {
	// No SetToken: the CI facts on the entry mark the token as JIT.
	m := mustMonitor(t, Config{})
	var tr trace
	tr.add(t0, "tok_j", "secret.read", "p/prod/A", allowed, "10.0.1.5").CI = map[string]string{"run_id": "7"}
	tr.add(t0.Add(time.Minute), "tok_j", "secret.read", "p/prod/A", allowed, "10.9.1.5").CI = map[string]string{"run_id": "7"}
	got, _ := replay(m, tr.entries)
	if !slices.Equal(got, []firing{{1, RuleJITSecondSource}}) {
		t.Errorf("got %v; want jit_second_source at entry 1", got)
	}
}

// TestConcurrentUse runs Observe beside Snapshot, SetToken, Usage and Prune
// so the race detector can check the locking.
func TestConcurrentUse(t *testing.T) {
	m := mustMonitor(t, Config{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			_, _ = m.Snapshot()
			m.SetToken(&tokenward.Token{ID: "tok_a", Kind: tokenward.TokenService})
			m.Usage("tok_a")
			m.SecretUsage("p/prod/A")
			if i%50 == 0 {
				m.Prune(t0)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				m.Observe(&tokenward.AuditEntry{Seq: int64(i), Time: t0.Add(time.Duration(i) * time.Second), TokenID: "tok_a",
					Action: "secret.read", Resource: "p/prod/A", Outcome: allowed, SourceIP: fmt.Sprintf("10.0.%d.1", g)})
			}
		})
	}
	wg.Wait()
	<-done
	if got := m.Observed(); got != 2000 {
		t.Errorf("got %d observed; want 2000", got)
	}
}

func TestRecordSecretReads(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	// An environment-wide read names project/env only: not a secret.
	m.Observe(&tokenward.AuditEntry{Seq: 1, Time: at, TokenID: "tok_a", Action: "secret.read_env", Resource: "payments/prod", Outcome: tokenward.OutcomeAllowed, SourceIP: "10.0.0.1"})
	if _, ok := m.SecretUsage("payments/prod"); ok {
		t.Fatal("an environment was counted as a secret")
	}
	m.RecordSecretReads("payments", "prod", []string{"A", "B"}, at, "10.0.0.1", "tok_a")
	m.RecordSecretReads("payments", "prod", []string{"A"}, at.Add(time.Hour), "10.0.0.2", "tok_b")
	for _, tc := range []struct {
		path, ip, token string
		count           uint32
	}{
		{"payments/prod/A", "10.0.0.2", "tok_b", 2},
		{"payments/prod/B", "10.0.0.1", "tok_a", 1},
	} {
		u, ok := m.SecretUsage(tc.path)
		if !ok || u.LastIP != tc.ip || u.LastTokenID != tc.token || len(u.Daily) != 1 || u.Daily[0].Count != tc.count {
			t.Errorf("%s: got %+v; want last %s by %s, %d reads", tc.path, u, tc.ip, tc.token, tc.count)
		}
	}
}

// Counting reads of secrets already counted allocates nothing: an
// environment fetch counts each of its secrets (docs/benchmarks.md).
func TestRecordSecretReadsAllocations(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"A", "B", "C"}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	m.RecordSecretReads("payments", "prod", names, at, "10.0.0.1", "tok_a")
	if n := testing.AllocsPerRun(100, func() { m.RecordSecretReads("payments", "prod", names, at, "10.0.0.1", "tok_a") }); n != 0 {
		t.Errorf("%v allocations per call; want 0", n)
	}
	if u, ok := m.SecretUsage("payments/prod/C"); !ok || u.Daily[0].Count != 102 {
		t.Errorf("payments/prod/C: got %+v; want 102 reads", u)
	}
}
