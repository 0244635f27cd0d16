package manifest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/rotate"
)

// leakMark stands for a value pasted where it does not belong: no error
// about a limit may quote it.
const leakMark = "LEAKEDx"

// A manifest over one of the server's limits must be refused by Parse, so
// apply refuses it before creating anything: the server refused such an
// object half-way through apply, leaving part of the manifest applied.
// Each case has a twin at the limit, which must parse.
func TestManifestEnforcesServerLimits(t *testing.T) {
	head := "project: acme\nenvironments: [prod]\nsecrets:\n  A:\n  B: {rotate: 400d}\n"
	pipeline := func(audience, claims string) string {
		return head + "pipelines:\n  deploy:\n    preset: github\n" + audience + claims + "    grants: [read:acme/prod/A]\n"
	}
	repo := "    claims:\n      repository: acme/app\n"
	list := func(n int, f func(i int) string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	audiences := func(n int) string {
		return pipeline("    audience: "+list(n, func(i int) string { return fmt.Sprintf("aud-%s%d", leakMark, i) })+"\n", repo)
	}
	audienceLen := func(n int) string {
		return pipeline("    audience: "+leakMark+strings.Repeat("a", n-len(leakMark))+"\n", repo)
	}
	claims := func(n int) string {
		var b strings.Builder
		b.WriteString("    claims:\n")
		for i := range n {
			fmt.Fprintf(&b, "      c%d: %s%d\n", i, leakMark, i)
		}
		return pipeline("", b.String())
	}
	claimValues := func(n int) string {
		return pipeline("", "    claims:\n      ref: "+list(n, func(i int) string { return fmt.Sprintf("refs/heads/%s%d", leakMark, i) })+"\n")
	}
	claimValueLen := func(n int) string {
		return pipeline("", "    claims:\n      ref: "+leakMark+strings.Repeat("v", n-len(leakMark))+"\n")
	}
	issuerLen := func(n int) string {
		base := "https://ci.example.com/"
		return pipeline("    issuer: "+base+leakMark+strings.Repeat("i", n-len(base)-len(leakMark))+"\n", repo)
	}
	rotation := func(body string) string { return head + "rotation:\n  B: {" + body + ", rotator: random}\n" }
	dyn := func(body string) string {
		return head + "dynamic:\n  db:\n    kind: postgres\n    admin_secret: A\n" + body
	}
	tests := []struct {
		name string
		over string // one past the limit: refused
		want string // in the error
		at   string // at the limit: accepted ("" when there is no such twin)
	}{
		{"audiences", audiences(oidc.MaxAudiences + 1), fmt.Sprintf("at most %d", oidc.MaxAudiences), audiences(oidc.MaxAudiences)},
		{"audience length", audienceLen(oidc.MaxAudienceLen + 1), "audience: longer than", audienceLen(oidc.MaxAudienceLen)},
		{"claim conditions", claims(oidc.MaxClaimConditions + 1), fmt.Sprintf("at most %d", oidc.MaxClaimConditions), claims(oidc.MaxClaimConditions)},
		{"claim values", claimValues(oidc.MaxConditionValues + 1), fmt.Sprintf("at most %d values", oidc.MaxConditionValues), claimValues(oidc.MaxConditionValues)},
		{"claim value length", claimValueLen(oidc.MaxPatternLen + 1), "longer than", claimValueLen(oidc.MaxPatternLen)},
		{"claim value control character", pipeline("", "    claims:\n      ref: \""+leakMark+"\\u0085x\"\n"), "printable", ""},
		{"issuer length", issuerLen(oidc.MaxIssuerLen + 1), "issuer: longer than", issuerLen(oidc.MaxIssuerLen)},
		{"every too short", rotation("every: 59m"), "at least " + rotate.FormatDuration(rotate.MinEvery), rotation("every: 1h")},
		{"cron every minute", rotation("cron: '* * * * *'"), "fires as often as every 1m;", rotation("cron: '0 * * * *'")},
		{"cron every 15 minutes at night", rotation("cron: '*/15 2 * * *'"), "fires as often as every 15m;", rotation("cron: '0 2,3 * * *'")},
		{"grace not shorter than cron across midnight", rotation("cron: '0 0,23 * * *', grace: 2h"), "grace", rotation("cron: '0 0,23 * * *', grace: 59m")},
		{"cron descriptor", rotation("cron: '@every 1m'"), "not a 5-field cron expression", rotation("cron: '0 0 * * *'")},
		{"cron time zone", rotation("cron: 'TZ=Europe/Paris 0 3 * * 1'"), "not a 5-field cron expression", ""},
		{"cron never fires", rotation("cron: '0 0 30 2 *'"), "never fires", rotation("cron: '0 0 29 2 *'")},
		{"every and cron", rotation("every: 30d, cron: '0 3 * * 1'"), "either every or cron", ""},
		{"jitter", rotation("every: 30d, jitter: 8d"), "jitter", rotation("every: 30d, jitter: 7d")},
		{"grace", rotation("every: 100d, grace: 91d"), "grace", rotation("every: 100d, grace: 90d")},
		{"grace not shorter than every", rotation("every: 1d, grace: 1d"), "grace", rotation("every: 1d, grace: 23h")},
		{"grace not shorter than cron", rotation("cron: '0 3 * * 1,2', grace: 2d"), "grace", rotation("cron: '0 3 * * 1,3', grace: 47h")},
		{"dynamic max_ttl", dyn("    ttl: 1h\n    max_ttl: 31d\n"), "max_ttl", dyn("    ttl: 1h\n    max_ttl: " + rotate.FormatDuration(tokenward.MaxLeaseTTL) + "\n")},
		{"dynamic ttl without max_ttl", dyn("    ttl: 31d\n"), "ttl", dyn("    ttl: 30d\n")},
		{"dynamic max_leases", dyn(fmt.Sprintf("    ttl: 1h\n    max_leases: %d\n", tokenward.MaxSourceLeases+1)), "max_leases", dyn(fmt.Sprintf("    ttl: 1h\n    max_leases: %d\n", tokenward.MaxSourceLeases))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tt.over))
			if err == nil {
				t.Fatalf("Parse: got no error; want one with %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: got %v; want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), leakMark) {
				t.Errorf("Parse: the error quotes a value: %v", err)
			}
			if tt.at == "" {
				return
			}
			if _, err := Parse("m.yaml", []byte(tt.at)); err != nil {
				t.Errorf("Parse at the limit: got %v; want no error", err)
			}
		})
	}
}
