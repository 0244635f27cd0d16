package monitor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var reportNow = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

func reportInput() ReportInput {
	now := reportNow
	daysAgo := func(n int) time.Time { return now.Add(-time.Duration(n) * day) }
	grants := func(ss ...string) tokenward.Grants {
		g, err := tokenward.ParseGrants(ss)
		if err != nil {
			panic(err)
		}
		return g
	}
	return ReportInput{
		Now: now,
		Tokens: []*tokenward.Token{
			// Used yesterday, all grants exercised: in no list.
			{ID: "tok_busy", Name: "deploy-prod", Kind: tokenward.TokenService, Owner: "team-pay", CreatedAt: daysAgo(100),
				LastUsedAt: daysAgo(1), Grants: grants("read:payments/prod/*")},
			// Idle 45 days.
			{ID: "tok_idle", Name: "legacy-sync", Kind: tokenward.TokenService, Owner: "team-data", CreatedAt: daysAgo(200),
				LastUsedAt: daysAgo(45), Grants: grants("read:data/prod/*")},
			// Never used, created 31 days ago: stale.
			{ID: "tok_never", Name: "forgotten", Kind: tokenward.TokenService, CreatedAt: daysAgo(31),
				Grants: grants("read:web/prod/API_KEY")},
			// Never used, created 10 days ago: not stale yet.
			{ID: "tok_new", Name: "fresh", Kind: tokenward.TokenService, CreatedAt: daysAgo(10)},
			// Expires in 5 days; used, but only one of its two grants.
			{ID: "tok_exp", Name: "contractor", Kind: tokenward.TokenAdmin, Owner: "alice", CreatedAt: daysAgo(60),
				ExpiresAt: now.Add(5*day + time.Hour), LastUsedAt: daysAgo(2),
				Grants: grants("read:payments/staging/*", "write:payments/staging/*")},
			// Revoked, expired and JIT tokens are in no list.
			{ID: "tok_rev", Name: "gone", Kind: tokenward.TokenService, CreatedAt: daysAgo(300), RevokedAt: daysAgo(100)},
			{ID: "tok_old", Name: "expired", Kind: tokenward.TokenService, CreatedAt: daysAgo(300), ExpiresAt: daysAgo(1)},
			{ID: "tok_jit", Name: "ci-42", Kind: tokenward.TokenJIT, CreatedAt: now.Add(-10 * time.Minute), ExpiresAt: now.Add(50 * time.Minute)},
		},
		Secrets: []*tokenward.Secret{
			{Project: "payments", Env: "prod", Name: "STRIPE_KEY", Owner: "team-pay", CreatedAt: daysAgo(400), ExpiresAt: now.Add(3*day + time.Hour)},
			{Project: "payments", Env: "prod", Name: "OLD_CERT", Owner: "team-pay", CreatedAt: daysAgo(400), ExpiresAt: daysAgo(2)},
			{Project: "payments", Env: "prod", Name: "FAR", CreatedAt: daysAgo(400), ExpiresAt: now.Add(60 * day)},
			{Project: "web", Env: "prod", Name: "API_KEY", Owner: "team-web", CreatedAt: daysAgo(120)},
		},
		Rotations: []RotationPolicy{
			{Secret: "payments/prod/STRIPE_KEY", Every: 90 * day, LastRotated: daysAgo(100)}, // 10 days overdue
			{Secret: "web/prod/API_KEY", Every: 30 * day},                                    // never rotated: 90 days overdue
			{Secret: "payments/prod/FAR", Every: 90 * day, LastRotated: daysAgo(10)},         // not due
		},
		Usage: map[string]TokenUsage{
			"tok_busy": {TokenID: "tok_busy", LastAt: daysAgo(1), Uses: []Use{{Action: "secret.read", Resource: "payments/prod/STRIPE_KEY", LastAt: daysAgo(1)}}},
			"tok_exp": {TokenID: "tok_exp", LastAt: daysAgo(2), Uses: []Use{
				{Action: "secret.read", Resource: "payments/staging/DB_URL", LastAt: daysAgo(2)},
				{Action: "secret.write", Resource: "payments/staging/DB_URL", LastAt: daysAgo(40)}, // outside the window
			}},
			"tok_idle": {TokenID: "tok_idle", LastAt: daysAgo(45), Uses: []Use{{Action: "secret.read", Resource: "data/prod/X", LastAt: daysAgo(45)}}},
		},
		Anomalies: []Anomaly{
			{Rule: RuleNewNetwork, Severity: SeverityMedium, Time: daysAgo(3), TokenID: "tok_busy", TokenName: "deploy-prod",
				Explanation: "token used from network 192.0.2.0/24; over 99 days it had used only 2 network(s)", Evidence: []Evidence{{Seq: 1200}}},
			{Rule: RuleRevokedUse, Severity: SeverityCritical, Time: daysAgo(4), TokenID: "tok_rev", TokenName: "gone",
				Explanation: "revoked token was presented (action secret.read, outcome denied): whoever holds it should not", Evidence: []Evidence{{Seq: 1100, RequestID: "req-1100"}}},
		},
	}
}

func TestReportContent(t *testing.T) {
	r := BuildReport(reportInput())
	ids := func(f func() []string) []string { return f() }
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"expiring", ids(func() (s []string) {
			for _, x := range r.Expiring {
				s = append(s, x.ID)
			}
			return
		}), []string{"payments/prod/OLD_CERT", "payments/prod/STRIPE_KEY", "tok_exp"}},
		{"overdue rotations", ids(func() (s []string) {
			for _, x := range r.OverdueRotations {
				s = append(s, x.Secret)
			}
			return
		}), []string{"web/prod/API_KEY", "payments/prod/STRIPE_KEY"}},
		{"stale tokens", ids(func() (s []string) {
			for _, x := range r.StaleTokens {
				s = append(s, x.ID)
			}
			return
		}), []string{"tok_idle", "tok_never"}},
		{"over-privileged", ids(func() (s []string) {
			for _, x := range r.OverPrivileged {
				s = append(s, x.ID+" "+x.Unused[0])
			}
			return
		}), []string{"tok_exp write:payments/staging/*", "tok_never read:web/prod/API_KEY", "tok_idle read:data/prod/*"}}, // by name
		{"anomalies, most severe first", ids(func() (s []string) {
			for _, x := range r.OpenAnomalies {
				s = append(s, string(x.Rule))
			}
			return
		}), []string{"revoked_token_use", "new_network"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Equal(tc.got, tc.want) {
				t.Errorf("got %q; want %q", tc.got, tc.want)
			}
		})
	}
	if r.Expiring[0].InDays != -2 || r.OverdueRotations[0].OverdueDays != 90 || r.StaleTokens[0].IdleDays != 45 {
		t.Errorf("got in_days %d, overdue %d, idle %d; want -2, 90, 45", r.Expiring[0].InDays, r.OverdueRotations[0].OverdueDays, r.StaleTokens[0].IdleDays)
	}
}

func TestReportOptions(t *testing.T) {
	in := reportInput()
	in.Options = ReportOptions{StaleAfter: 40 * day, ExpiryWindow: 4 * day}
	r := BuildReport(in)
	if len(r.StaleTokens) != 1 || r.StaleTokens[0].ID != "tok_idle" {
		t.Errorf("stale after 40 days: got %+v; want only tok_idle", r.StaleTokens)
	}
	if len(r.Expiring) != 2 {
		t.Errorf("expiry window 4 days: got %d items; want 2 (expired cert, key in 3 days)", len(r.Expiring))
	}
}

func TestReportGolden(t *testing.T) {
	r := BuildReport(reportInput())
	for _, tc := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"report.txt", func(b *bytes.Buffer) error { return r.WriteText(b) }},
		{"report.json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.write(&buf); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("got\n%s\nwant (%s)\n%s", buf.Bytes(), path, want)
			}
		})
	}
	// The JSON form round-trips.
	var buf bytes.Buffer
	_ = r.WriteJSON(&buf)
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var buf2 bytes.Buffer
	_ = back.WriteJSON(&buf2)
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Errorf("JSON report does not round-trip:\ngot  %s\nwant %s", buf2.Bytes(), buf.Bytes())
	}
}

func TestReportEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := BuildReport(ReportInput{Now: reportNow}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(buf.Bytes(), &m)
	for _, k := range []string{"expiring", "overdue_rotations", "stale_tokens", "over_privileged", "open_anomalies"} {
		if v, ok := m[k].([]any); !ok || len(v) != 0 {
			t.Errorf("empty report %q: got %v; want []", k, m[k])
		}
	}
}

// TestUnusedGatewayGrants: a call through a route exercises the gateway
// grants that allow it, and no other grant.
func TestUnusedGatewayGrants(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	gs := tokenward.Grants{tokenward.MustParseGrant("gateway:github"), tokenward.MustParseGrant("gateway:gitlab"), tokenward.MustParseGrant("read:a/b/*")}
	u := TokenUsage{Uses: []Use{{Action: ActionGatewayCall, Resource: "gateway:github", LastAt: now}}}
	got := unusedGrants(gs, u, now.Add(-time.Hour))
	if want := []string{"gateway:gitlab", "read:a/b/*"}; !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}
