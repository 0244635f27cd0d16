package monitor

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// trace builds audit entries with increasing sequence numbers.
type trace struct {
	seq     int64
	entries []*tokenward.AuditEntry
}

func (tr *trace) add(at time.Time, token, action, resource, outcome, ip string) *tokenward.AuditEntry {
	tr.seq++
	e := &tokenward.AuditEntry{
		Seq: tr.seq, Time: at, RequestID: fmt.Sprintf("req-%d", tr.seq), TokenID: token,
		Action: action, Resource: resource, Outcome: outcome, SourceIP: ip,
	}
	tr.entries = append(tr.entries, e)
	return e
}

// learn adds n allowed reads of resource by token from ip, spread over span
// (so the token leaves its learning period).
func (tr *trace) learn(token, resource, ip string, n int, span time.Duration) {
	for i := range n {
		tr.add(t0.Add(span*time.Duration(i)/time.Duration(n-1)), token, "secret.read", resource, tokenward.OutcomeAllowed, ip)
	}
}

func mustMonitor(tb testing.TB, cfg Config, tokens ...*tokenward.Token) *Monitor {
	tb.Helper()
	m, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	for _, t := range tokens {
		m.SetToken(t)
	}
	return m
}

type firing struct {
	Index int // entry index
	Rule  RuleID
}

func replay(m *Monitor, entries []*tokenward.AuditEntry) ([]firing, []Anomaly) {
	var fs []firing
	var all []Anomaly
	for i, e := range entries {
		for _, a := range m.Observe(e) {
			fs = append(fs, firing{i, a.Rule})
			all = append(all, a)
		}
	}
	return fs, all
}

const (
	allowed = tokenward.OutcomeAllowed
	denied  = tokenward.OutcomeDenied
	week    = 7 * 24 * time.Hour
)

func TestRules(t *testing.T) {
	svc := &tokenward.Token{ID: "tok_svc", Name: "deploy", Kind: tokenward.TokenService, CreatedAt: t0}
	jit := &tokenward.Token{ID: "tok_jit", Name: "ci-123", Kind: tokenward.TokenJIT, CreatedAt: t0, ExpiresAt: t0.Add(3 * time.Hour)}
	revoked := &tokenward.Token{ID: "tok_rev", Name: "old", Kind: tokenward.TokenService, CreatedAt: t0, RevokedAt: t0.Add(time.Hour)}
	expiring := &tokenward.Token{ID: "tok_exp", Name: "temp", Kind: tokenward.TokenService, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	after := t0.Add(8 * 24 * time.Hour)

	tests := []struct {
		name  string
		build func(tr *trace)
		want  []firing // index -1 means "the last entry"
	}{
		{"stable token, known network: nothing", func(tr *trace) {
			tr.learn("tok_svc", "p/prod/A", "10.0.1.5", 30, 8*24*time.Hour)
			tr.add(after.Add(time.Hour), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.1.200")
		}, nil},
		{"stable token, new /24: new_network", func(tr *trace) {
			tr.learn("tok_svc", "p/prod/A", "10.0.1.5", 30, 8*24*time.Hour)
			tr.add(after.Add(time.Hour), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.9.5")
		}, []firing{{-1, RuleNewNetwork}}},
		{"new network during learning: nothing", func(tr *trace) {
			tr.learn("tok_svc", "p/prod/A", "10.0.1.5", 30, 3*24*time.Hour)
			tr.add(t0.Add(4*24*time.Hour), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.9.5")
		}, nil},
		{"IPv6 same /48: nothing", func(tr *trace) {
			tr.learn("tok_svc", "p/prod/A", "2001:db8:1:2::5", 30, 8*24*time.Hour)
			tr.add(after.Add(time.Hour), "tok_svc", "secret.read", "p/prod/A", allowed, "2001:db8:1:ffff::9")
		}, nil},
		{"IPv6 new /48: new_network", func(tr *trace) {
			tr.learn("tok_svc", "p/prod/A", "2001:db8:1:2::5", 30, 8*24*time.Hour)
			tr.add(after.Add(time.Hour), "tok_svc", "secret.read", "p/prod/A", allowed, "2001:db8:2::5")
		}, []firing{{-1, RuleNewNetwork}}},
		{"unstable token (9 networks): nothing", func(tr *trace) {
			for i := range 30 {
				tr.add(t0.Add(time.Duration(i)*7*time.Hour), "tok_svc", "secret.read", "p/prod/A", allowed, fmt.Sprintf("10.0.%d.1", i%9))
			}
			tr.add(after.Add(time.Hour), "tok_svc", "secret.read", "p/prod/A", allowed, "192.0.2.1")
		}, nil},
		{"61 requests in a minute on a fresh token: rate_burst at the 61st", func(tr *trace) {
			for i := range 70 {
				tr.add(t0.Add(time.Duration(i)*500*time.Millisecond), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			}
		}, []firing{{60, RuleRateBurst}}},
		{"steady 20/min then 150/min: under 10x baseline, nothing", func(tr *trace) {
			for m := range 100 {
				for i := range 20 {
					tr.add(t0.Add(time.Duration(m)*time.Minute+time.Duration(i)*time.Second), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.1.5")
				}
			}
			for i := range 150 {
				tr.add(t0.Add(200*time.Minute+time.Duration(i)*300*time.Millisecond), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			}
		}, nil},
		{"steady 20/min then 250/min: rate_burst at the 201st", func(tr *trace) {
			for m := range 100 {
				for i := range 20 {
					tr.add(t0.Add(time.Duration(m)*time.Minute+time.Duration(i)*time.Second), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.1.5")
				}
			}
			for i := range 250 {
				tr.add(t0.Add(200*time.Minute+time.Duration(i)*200*time.Millisecond), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			}
		}, []firing{{2000 + 200, RuleRateBurst}}},
		{"learned token reads a new secret: new_secret_read", func(tr *trace) {
			tr.learn("tok_svc", "p/prod/A", "10.0.1.5", 30, 8*24*time.Hour)
			tr.add(after.Add(time.Hour), "tok_svc", "secret.read", "p/prod/B", allowed, "10.0.1.5")
			tr.add(after.Add(2*time.Hour), "tok_svc", "secret.read", "p/prod/B", allowed, "10.0.1.5")
		}, []firing{{30, RuleNewSecretRead}}},
		{"denied read of a new secret: not a new read", func(tr *trace) {
			tr.learn("tok_svc", "p/prod/A", "10.0.1.5", 30, 8*24*time.Hour)
			tr.add(after.Add(time.Hour), "tok_svc", "secret.read", "p/prod/B", denied, "10.0.1.5")
		}, nil},
		{"new secret during learning: nothing", func(tr *trace) {
			tr.learn("tok_svc", "p/prod/A", "10.0.1.5", 30, 3*24*time.Hour)
			tr.add(t0.Add(4*24*time.Hour), "tok_svc", "secret.read", "p/prod/B", allowed, "10.0.1.5")
		}, nil},
		{"JIT within its job window from one network: nothing", func(tr *trace) {
			tr.add(t0, "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			tr.add(t0.Add(59*time.Minute), "tok_jit", "secret.read", "p/prod/B", allowed, "10.0.1.5")
		}, nil},
		{"JIT after its job window: jit_after_job", func(tr *trace) {
			tr.add(t0, "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			tr.add(t0.Add(61*time.Minute), "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.1.5")
		}, []firing{{1, RuleJITAfterJob}}},
		{"JIT from a second network: jit_second_source", func(tr *trace) {
			tr.add(t0, "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			tr.add(t0.Add(time.Minute), "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.2.5")
		}, []firing{{1, RuleJITSecondSource}}},
		{"10 denied in 5 minutes: denied_burst at the 10th", func(tr *trace) {
			for i := range 12 {
				tr.add(t0.Add(time.Duration(i)*20*time.Second), "tok_svc", "secret.read", fmt.Sprintf("p/prod/S%d", i), denied, "10.0.1.5")
			}
		}, []firing{{9, RuleDeniedBurst}}},
		{"12 throttled (429) in 4 minutes: nothing, a rate limit is no probe", func(tr *trace) {
			for i := range 12 {
				tr.add(t0.Add(time.Duration(i)*20*time.Second), "tok_svc", "secret.read", "p/prod/A", denied, "10.0.1.5").Status = 429
			}
		}, nil},
		{"10 denied over 9 minutes: nothing", func(tr *trace) {
			for i := range 10 {
				tr.add(t0.Add(time.Duration(i)*time.Minute), "tok_svc", "secret.read", "p/prod/A", denied, "10.0.1.5")
			}
		}, nil},
		{"20 denied from one IP with bad tokens: denied_burst_ip", func(tr *trace) {
			for i := range 20 {
				tr.add(t0.Add(time.Duration(i)*time.Second), "", "auth", "", denied, "203.0.113.7")
			}
		}, []firing{{19, RuleDeniedBurstIP}}},
		{"revoked token used: revoked_token_use on the first request only", func(tr *trace) {
			tr.add(t0.Add(30*time.Minute), "tok_rev", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			tr.add(t0.Add(2*time.Hour), "tok_rev", "secret.read", "p/prod/A", denied, "10.0.1.5")
			tr.add(t0.Add(2*time.Hour+time.Second), "tok_rev", "secret.read", "p/prod/A", denied, "10.0.1.5")
		}, []firing{{1, RuleRevokedUse}}},
		{"token's own revocation request: nothing", func(tr *trace) {
			tr.add(t0.Add(time.Hour), "tok_rev", "token.revoke", "token:tok_rev", allowed, "10.0.1.5")
		}, nil},
		{"unknown token refused as revoked (reason only): revoked_token_use", func(tr *trace) {
			e := tr.add(t0, "tok_unknown", "secret.read", "p/prod/A", denied, "10.0.1.5")
			e.Reason = ReasonTokenRevoked
		}, []firing{{0, RuleRevokedUse}}},
		{"expired token used at its expiry: expired_token_use", func(tr *trace) {
			tr.add(t0.Add(59*time.Minute), "tok_exp", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			tr.add(t0.Add(time.Hour), "tok_exp", "secret.read", "p/prod/A", denied, "10.0.1.5")
		}, []firing{{1, RuleExpiredUse}}},
		{"leak reported: leak_reported on the report", func(tr *trace) {
			tr.add(t0, "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			tr.add(t0.Add(time.Minute), "tok_scanner", ActionReportLeak, "token:tok_svc", allowed, "10.0.3.5")
			tr.add(t0.Add(2*time.Minute), "tok_scanner", ActionReportLeak, "token:tok_svc", allowed, "10.0.3.5")
		}, []firing{{1, RuleLeakReported}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustMonitor(t, Config{}, svc, jit, revoked, expiring)
			var tr trace
			tc.build(&tr)
			want := slices.Clone(tc.want)
			for i := range want {
				if want[i].Index < 0 {
					want[i].Index = len(tr.entries) - 1
				}
			}
			got, anomalies := replay(m, tr.entries)
			if !slices.Equal(got, want) {
				t.Fatalf("got firings %v; want %v", got, want)
			}
			for _, a := range anomalies {
				if a.Explanation == "" || a.Severity == "" || len(a.Evidence) == 0 {
					t.Errorf("anomaly %s: got explanation %q, severity %q, %d evidence; want all set", a.Rule, a.Explanation, a.Severity, len(a.Evidence))
				}
				if m.AnomalyCount(a.Rule) == 0 {
					t.Errorf("AnomalyCount(%s) = 0; want > 0", a.Rule)
				}
			}
		})
	}
}

func TestAnomalyDetails(t *testing.T) {
	jit := &tokenward.Token{ID: "tok_jit", Name: "ci-123", Kind: tokenward.TokenJIT, CreatedAt: t0}
	m := mustMonitor(t, Config{}, jit)
	var tr trace
	tr.add(t0, "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.1.5")
	tr.add(t0.Add(time.Minute), "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.2.5")
	tr.add(t0.Add(2*time.Minute), "tok_scanner", ActionReportLeak, "token:tok_jit", allowed, "10.0.3.5")
	_, got := replay(m, tr.entries)
	if len(got) != 2 {
		t.Fatalf("got %d anomalies; want 2", len(got))
	}
	a := got[0]
	if a.Rule != RuleJITSecondSource || !a.Suspend || a.TokenID != "tok_jit" || a.TokenName != "ci-123" || a.Severity != SeverityHigh {
		t.Errorf("got %+v; want jit_second_source, suspend, tok_jit/ci-123, high", a)
	}
	if len(a.Evidence) != 1 || a.Evidence[0].Seq != 2 || a.Evidence[0].RequestID != "req-2" {
		t.Errorf("got evidence %+v; want seq 2 / req-2", a.Evidence)
	}
	if !strings.Contains(a.Explanation, "10.0.2.0/24") || !strings.Contains(a.Explanation, "10.0.1.0/24") {
		t.Errorf("got explanation %q; want both networks named", a.Explanation)
	}
	l := got[1]
	if l.Rule != RuleLeakReported || l.TokenID != "tok_jit" || l.TokenName != "ci-123" || !l.Suspend || l.Severity != SeverityCritical {
		t.Errorf("got %+v; want leak_reported on tok_jit, suspend, critical", l)
	}
}

func TestPolicyOverride(t *testing.T) {
	tok := &tokenward.Token{ID: "tok_rev", Kind: tokenward.TokenService, CreatedAt: t0, RevokedAt: t0}
	for _, tc := range []struct {
		policy map[RuleID]Action
		want   bool
	}{
		{nil, false},
		{map[RuleID]Action{RuleRevokedUse: ActionSuspend}, true},
	} {
		m := mustMonitor(t, Config{Policy: tc.policy}, tok)
		var tr trace
		tr.add(t0.Add(time.Second), "tok_rev", "secret.read", "p/prod/A", denied, "10.0.1.5")
		_, got := replay(m, tr.entries)
		if len(got) != 1 || got[0].Suspend != tc.want {
			t.Errorf("policy %v: got %+v; want one anomaly with Suspend=%v", tc.policy, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"multiplier below 1", Config{RateMultiplier: 0.5}, false},
		{"alpha above 1", Config{RateAlpha: 1.5}, false},
		{"denied threshold too big", Config{DeniedPerIP: 100000}, false},
		{"unknown rule in policy", Config{Policy: map[RuleID]Action{"nope": ActionAlert}}, false},
		{"unknown action in policy", Config{Policy: map[RuleID]Action{RuleRateBurst: "delete"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("got error %v; want ok=%v", err, tc.ok)
			}
			if err != nil && tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Errorf("got code %q; want %q", tokenward.ErrorCode(err), tokenward.EINVALID)
			}
		})
	}
}

func TestNumRules(t *testing.T) {
	if len(Rules) != numRules {
		t.Fatalf("got %d rules; want numRules = %d", len(Rules), numRules)
	}
	for _, r := range Rules {
		if ruleSeverity[r] == "" {
			t.Errorf("rule %s has no severity", r)
		}
	}
}

func TestBoundedMemory(t *testing.T) {
	m := mustMonitor(t, Config{MaxNetworksPerToken: 4, MaxUsesPerToken: 8, MaxIPs: 16})
	var tr trace
	for i := range 1000 {
		tr.add(t0.Add(time.Duration(i)*time.Minute), "tok_a", "secret.read", fmt.Sprintf("p/prod/S%d", i), allowed, fmt.Sprintf("10.%d.%d.1", i/256, i%256))
		tr.add(t0.Add(time.Duration(i)*time.Minute), "", "auth", "", denied, fmt.Sprintf("192.0.%d.%d", i/256, i%256))
	}
	replay(m, tr.entries)
	u, _ := m.Usage("tok_a")
	m.mu.Lock()
	nets, ips := len(m.state["tok_a"].Networks), len(m.ips)
	m.mu.Unlock()
	if nets != 4 || len(u.Uses) != 8 || ips > 16 {
		t.Errorf("got %d networks, %d uses, %d IPs; want 4, 8, <= 16", nets, len(u.Uses), ips)
	}
	m.Prune(t0.Add(1000 * time.Minute))
	if n := m.TrackedTokens(); n != 1 {
		t.Errorf("Prune the same day: got %d tracked tokens; want 1", n)
	}
	m.Prune(t0.Add(91 * 24 * time.Hour))
	m.mu.Lock()
	ips = len(m.ips)
	m.mu.Unlock()
	if n := m.TrackedTokens(); n != 0 || ips != 0 {
		t.Errorf("Prune after 91 days: got %d tracked tokens, %d IPs; want 0, 0", n, ips)
	}
}

func TestSnapshotRestore(t *testing.T) {
	svc := &tokenward.Token{ID: "tok_svc", Name: "deploy", Kind: tokenward.TokenService, CreatedAt: t0}
	m := mustMonitor(t, Config{}, svc)
	var tr trace
	tr.learn("tok_svc", "p/prod/A", "10.0.1.5", 30, 8*24*time.Hour)
	replay(m, tr.entries)
	m.SetCursor(4242)
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := mustMonitor(t, Config{}, svc)
	if err := m2.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	snap2, _ := m2.Snapshot()
	if string(snap) != string(snap2) {
		t.Errorf("snapshot after restore differs:\ngot  %s\nwant %s", snap2, snap)
	}
	if got := m2.Cursor(); got != 4242 {
		t.Errorf("cursor after restore: got %d; want 4242", got)
	}
	if got, err := SnapshotCursor(snap); got != 4242 || err != nil {
		t.Errorf("SnapshotCursor: got %d, %v; want 4242, nil", got, err)
	}
	// The restored baseline still knows the token is stable on 10.0.1.0/24.
	e := tr.add(t0.Add(9*24*time.Hour), "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.7.1")
	got := m2.Observe(e)
	if len(got) != 1 || got[0].Rule != RuleNewNetwork {
		t.Errorf("after restore: got %v; want one new_network", got)
	}

	bad := []struct{ name, data string }{
		{"not json", "{"},
		{"wrong version", `{"version":2,"tokens":{}}`},
		{"unmasked network", `{"version":1,"tokens":{"tok_a":{"networks":["10.0.1.5/24"]}}}`},
		{"wrong prefix length", `{"version":1,"tokens":{"tok_a":{"networks":["10.0.0.0/16"]}}}`},
		{"unknown rule", `{"version":1,"tokens":{"tok_a":{"fired":[{"rule":"x","at":"2026-01-01T00:00:00Z"}]}}}`},
		{"negative", `{"version":1,"tokens":{"tok_a":{"requests":-1}}}`},
		{"null token", `{"version":1,"tokens":{"tok_a":null}}`},
		{"negative cursor", `{"version":1,"tokens":{},"cursor":-1}`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := m2.Snapshot()
			if err := m2.Restore([]byte(tc.data)); tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Errorf("got %v; want an EINVALID error", err)
			}
			after, _ := m2.Snapshot()
			if string(before) != string(after) {
				t.Errorf("a failed Restore changed the state")
			}
		})
	}
}

func FuzzRestore(f *testing.F) {
	m := mustMonitor(f, Config{})
	var tr trace
	tr.learn("tok_svc", "p/prod/A", "10.0.1.5", 30, 8*24*time.Hour)
	tr.add(t0, "tok_svc", "x", "", allowed, "2001:db8::1")
	replay(m, tr.entries)
	snap, _ := m.Snapshot()
	f.Add(snap)
	f.Add([]byte(`{"version":1,"tokens":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := mustMonitor(t, Config{})
		if err := m.Restore(data); err != nil {
			return
		}
		// Parse-then-marshal is stable: a second round gives the same bytes.
		s1, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		m2 := mustMonitor(t, Config{})
		if err := m2.Restore(s1); err != nil {
			t.Fatalf("restoring our own snapshot: %v", err)
		}
		s2, _ := m2.Snapshot()
		if string(s1) != string(s2) {
			t.Fatalf("got %s; want %s", s2, s1)
		}
	})
}

func FuzzObserve(f *testing.F) {
	f.Add("tok_a", "secret.read", "p/e/N", "allowed", "10.0.0.1", "")
	f.Add("", "token.report_leak", "token:", "denied", "::ffff:1.2.3.4", ReasonTokenRevoked)
	f.Add("tok_a", "token.report_leak", "token:tok_b", "allowed", "fe80::1%eth0", "")
	f.Fuzz(func(t *testing.T, tok, action, resource, outcome, ip, reason string) {
		m := mustMonitor(t, Config{})
		for i := range 3 {
			e := &tokenward.AuditEntry{Seq: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), TokenID: tok,
				Action: action, Resource: resource, Outcome: outcome, SourceIP: ip, Reason: reason}
			for _, a := range m.Observe(e) {
				if a.Rule == "" || len(a.Evidence) == 0 {
					t.Fatalf("got %+v; want a rule and evidence", a)
				}
				if _, err := json.Marshal(a); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// TestNoSecretsInAnomalies feeds entries whose correlating HMACs and user
// agent hold secret-like strings; no anomaly may carry them.
func TestNoSecretsInAnomalies(t *testing.T) {
	const hmacValue = "hmac-0123456789abcdef-SECRETCORRELATOR"
	const leaked = "tws_NotARealTokenButLooksLikeOne000000000000000000"
	rev := &tokenward.Token{ID: "tok_rev", Kind: tokenward.TokenService, CreatedAt: t0, RevokedAt: t0}
	m := mustMonitor(t, Config{}, rev)
	var tr trace
	for i := range 30 {
		e := tr.add(t0.Add(time.Duration(i)*time.Second), "tok_rev", "secret.read", "p/prod/A", denied, "10.0.1.5")
		e.Meta = map[string]string{"value_hmac": hmacValue}
		e.UserAgent = leaked
	}
	_, got := replay(m, tr.entries)
	if len(got) == 0 {
		t.Fatal("got no anomalies; want some")
	}
	b, _ := json.Marshal(got)
	for _, a := range got {
		b = append(b, a.String()...)
		sp, _ := SlackPayload(a)
		b = append(b, sp...)
	}
	for _, s := range []string{hmacValue, leaked} {
		if strings.Contains(string(b), s) {
			t.Errorf("anomaly output holds %q; want it absent", s)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	m := mustMonitor(b, Config{})
	const tokens = 1000
	for i := range tokens {
		m.SetToken(&tokenward.Token{ID: fmt.Sprintf("tok_%04d", i), Kind: tokenward.TokenService, CreatedAt: t0})
	}
	entries := make([]*tokenward.AuditEntry, 4096)
	for i := range entries {
		entries[i] = &tokenward.AuditEntry{
			Seq: int64(i), TokenID: fmt.Sprintf("tok_%04d", i%tokens), Action: "secret.read",
			Resource: fmt.Sprintf("p/prod/S%d", i%7), Outcome: allowed, SourceIP: fmt.Sprintf("10.0.%d.%d", i%3, i%250),
		}
	}
	// Warm the baselines so the loop measures the steady state.
	for i, e := range entries {
		e.Time = t0.Add(time.Duration(i) * time.Second)
		m.Observe(e)
	}
	b.ReportAllocs()
	b.ResetTimer()
	at := t0.Add(2 * time.Hour) // after the warm-up entries
	for i := 0; b.Loop(); i++ {
		e := entries[i%len(entries)]
		e.Time = at.Add(time.Duration(i) * 10 * time.Millisecond)
		if a := m.Observe(e); a != nil {
			b.Fatalf("unexpected anomaly %v", a)
		}
	}
}

func TestPruneJIT(t *testing.T) {
	jit := &tokenward.Token{ID: "tok_jit", Kind: tokenward.TokenJIT, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	svc := &tokenward.Token{ID: "tok_svc", Kind: tokenward.TokenService, CreatedAt: t0}
	m := mustMonitor(t, Config{}, jit, svc)
	var tr trace
	tr.add(t0, "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.1.5")
	tr.add(t0, "tok_svc", "secret.read", "p/prod/A", allowed, "10.0.1.5")
	replay(m, tr.entries)
	m.Prune(t0.Add(25 * time.Hour))
	if _, ok := m.Usage("tok_jit"); ok {
		t.Errorf("JIT state kept 25h after last use; want it pruned")
	}
	if _, ok := m.Usage("tok_svc"); !ok {
		t.Errorf("service state pruned after 25h; want it kept until StateTTL")
	}
	// The JIT record is kept (until StateTTL past expiry): a late use is
	// still an expired-token use.
	got := m.Observe(tr.add(t0.Add(26*time.Hour), "tok_jit", "secret.read", "p/prod/A", denied, "10.0.1.5"))
	if len(got) != 1 || got[0].Rule != RuleExpiredUse {
		t.Errorf("late JIT use after Prune: got %v; want expired_token_use", got)
	}
}
