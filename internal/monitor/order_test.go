package monitor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// TestOwnRevocation: a token that revokes itself is not "used after
// its revocation". The server sets RevokedAt while it handles the request
// and stamps the audit entry when the handler returns, so the entry is a
// little later than RevokedAt, and it refreshes the token record (SetToken)
// before it hands the entry to Observe.
func TestOwnRevocation(t *testing.T) {
	revokedAt := t0.Add(time.Hour)
	tests := []struct {
		name     string
		action   string
		resource string
		outcome  string
		reason   string
		delay    time.Duration // entry time after RevokedAt
		want     []RuleID
	}{
		{"own revocation, entry stamped at RevokedAt", "token.revoke", "token:tok_self", allowed, "", 0, nil},
		{"own revocation, entry stamped 3ms later", "token.revoke", "token:tok_self", allowed, "", 3 * time.Millisecond, nil},
		{"own revocation, entry stamped 2s later (slow store)", "token.revoke", "token:tok_self", allowed, "", 2 * time.Second, nil},
		{"a read after the revocation is a use", "secret.read", "p/prod/A", allowed, "", 3 * time.Millisecond, []RuleID{RuleRevokedUse}},
		{"revoking another token after its own revocation is a use", "token.revoke", "token:tok_other", allowed, "", 3 * time.Millisecond, []RuleID{RuleRevokedUse}},
		{"a refused revocation (token already revoked) is a use", "token.revoke", "token:tok_self", denied, ReasonTokenRevoked, 3 * time.Millisecond, []RuleID{RuleRevokedUse}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			self := &tokenward.Token{ID: "tok_self", Name: "ci-cleanup", Kind: tokenward.TokenService, CreatedAt: t0, RevokedAt: revokedAt}
			m := mustMonitor(t, Config{}, self)
			var tr trace
			tr.add(t0, "tok_self", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			e := tr.add(revokedAt.Add(tc.delay), "tok_self", tc.action, tc.resource, tc.outcome, "10.0.1.5")
			e.Reason = tc.reason
			_, all := replay(m, tr.entries)
			var got []RuleID
			for _, a := range all {
				got = append(got, a.Rule)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

// TestCooldownOutOfOrder: entries of concurrent requests reach
// Observe in an order that is not their time order (each is stamped when
// its handler returns; with several servers, by each server's clock). A
// rule that fired must not fire again for an entry a little older than
// the one it fired at.
func TestCooldownOutOfOrder(t *testing.T) {
	revoked := &tokenward.Token{ID: "tok_rev", Name: "old", Kind: tokenward.TokenService, CreatedAt: t0, RevokedAt: t0.Add(time.Hour)}
	jit := &tokenward.Token{ID: "tok_jit", Name: "ci-1", Kind: tokenward.TokenJIT, CreatedAt: t0, ExpiresAt: t0.Add(3 * time.Hour)}
	at := t0.Add(2 * time.Hour)
	tests := []struct {
		name  string
		build func(tr *trace)
		want  []firing
	}{
		{"revoked token used by parallel requests", func(tr *trace) {
			tr.add(at.Add(10*time.Millisecond), "tok_rev", "secret.read", "p/prod/A", denied, "198.51.100.7")
			tr.add(at.Add(4*time.Millisecond), "tok_rev", "secret.read", "p/prod/B", denied, "198.51.100.7")
			tr.add(at.Add(12*time.Millisecond), "tok_rev", "secret.read", "p/prod/C", denied, "198.51.100.7")
		}, []firing{{0, RuleRevokedUse}}},
		{"jit token from a second network, parallel requests", func(tr *trace) {
			tr.add(t0, "tok_jit", "secret.read", "p/prod/A", allowed, "10.0.1.5")
			tr.add(t0.Add(time.Minute+50*time.Millisecond), "tok_jit", "secret.read", "p/prod/A", allowed, "198.51.100.7")
			tr.add(t0.Add(time.Minute+20*time.Millisecond), "tok_jit", "secret.read", "p/prod/B", allowed, "198.51.100.7")
		}, []firing{{1, RuleJITSecondSource}}},
		{"denied burst, the 11th stamped before the 10th", func(tr *trace) {
			for i := range 10 {
				tr.add(at.Add(time.Duration(i)*time.Second), "tok_svc", "secret.read", fmt.Sprintf("p/prod/S%d", i), denied, "10.0.1.5")
			}
			tr.add(at.Add(9*time.Second-time.Millisecond), "tok_svc", "secret.read", "p/prod/S10", denied, "10.0.1.5")
		}, []firing{{9, RuleDeniedBurst}}},
		{"an entry a cooldown older still fires", func(tr *trace) {
			tr.add(at.Add(2*time.Hour), "tok_rev", "secret.read", "p/prod/A", denied, "198.51.100.7")
			tr.add(at, "tok_rev", "secret.read", "p/prod/B", denied, "198.51.100.7")
		}, []firing{{0, RuleRevokedUse}, {1, RuleRevokedUse}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustMonitor(t, Config{}, revoked, jit)
			var tr trace
			tc.build(&tr)
			got, _ := replay(m, tr.entries)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

// TestDeniedBurstIPSameHost: denied_burst_ip counts one source host.
// An IPv6 host picks any address of its /64 (privacy addresses rotate on
// their own; a VPS gets a whole /64), so counting per IPv6 address lets one
// host probe without end; the forms of one IPv4 address count as one.
func TestDeniedBurstIPSameHost(t *testing.T) {
	tests := []struct {
		name string
		ip   func(i int) string
		want int // denied_burst_ip anomalies
	}{
		{"one IPv4 address", func(int) string { return "203.0.113.7" }, 1},
		{"one IPv4 address, plain and IPv4-mapped", func(i int) string {
			if i%2 == 0 {
				return "203.0.113.7"
			}
			return "::ffff:203.0.113.7"
		}, 1},
		{"one IPv6 address with and without zone", func(i int) string {
			if i%2 == 0 {
				return "2001:db8:1:2::7"
			}
			return "2001:db8:1:2::7%eth0"
		}, 1},
		{"an IPv6 host rotating addresses in its /64", func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i+1) }, 1},
		{"an IPv6 host rotating interface ids in its /64", func(i int) string { return fmt.Sprintf("2001:db8:1:2:%x:%x::1", (i*7919)&0xffff, i) }, 1},
		{"twenty IPv4 hosts of one /24: not one host", func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }, 0},
		{"twenty IPv6 /64s: not one host", func(i int) string { return fmt.Sprintf("2001:db8:1:%x::1", i+1) }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mustMonitor(t, Config{})
			var tr trace
			for i := range 20 {
				tr.add(t0.Add(time.Duration(i)*time.Second), "", "auth", "", denied, tc.ip(i))
			}
			_, all := replay(m, tr.entries)
			n := 0
			for _, a := range all {
				if a.Rule == RuleDeniedBurstIP {
					n++
					if a.Suspend || len(a.Evidence) != 20 {
						t.Errorf("got %+v; want no suspension and 20 entries of evidence", a)
					}
					if strings.Contains(a.SourceIP, ":") && !strings.Contains(a.Explanation, "2001:db8:1:2::/64") {
						t.Errorf("got explanation %q; want it to name the /64", a.Explanation)
					}
				}
			}
			if n != tc.want {
				t.Errorf("got %d denied_burst_ip; want %d", n, tc.want)
			}
		})
	}
}

// TestRefusedLeakReportSuspendsNothing: only a leak report the server
// accepted marks a token leaked; a refused one (rate limited, malformed)
// proves nothing about the token it names.
func TestRefusedLeakReportSuspendsNothing(t *testing.T) {
	for _, tc := range []struct {
		outcome string
		want    int
	}{{allowed, 1}, {denied, 0}} {
		victim := &tokenward.Token{ID: "tok_victim", Name: "deploy", Kind: tokenward.TokenService, CreatedAt: t0}
		m := mustMonitor(t, Config{}, victim)
		var tr trace
		tr.add(t0.Add(time.Minute), "", ActionReportLeak, "token:tok_victim", tc.outcome, "203.0.113.9")
		_, all := replay(m, tr.entries)
		n := 0
		for _, a := range all {
			if a.Rule == RuleLeakReported {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("a %s leak report: got %d leak_reported; want %d", tc.outcome, n, tc.want)
		}
	}
}
