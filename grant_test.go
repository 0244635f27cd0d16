package tokenward

import (
	"strings"
	"testing"
)

func TestParseGrant(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = error
	}{
		{"read:payments/prod/STRIPE_KEY", "read:payments/prod/STRIPE_KEY"},
		{"admin:*/*/*", "admin:*/*/*"},
		{"write:payments/*/DB_*", "write:payments/*/DB_*"},
		{"read:payments/prod/*_KEY", "read:payments/prod/*_KEY"},
		{"read:payments/prod", ""},
		{"read:payments/prod/a/b", ""},
		{"steal:payments/prod/*", ""},
		{"payments/prod/*", ""},
		{"read:Payments/prod/*", ""},
		{"read:payments/pr*d/*", ""},
		{"read:payments/prod/1KEY", ""},
		{"read:payments/prod/**", ""},
		{"read:payments/prod/A-B", ""},
		{"read://", ""},
		{"gateway:github", "gateway:github"},
		{"gateway:*", "gateway:*"},
		{"gateway:git*", "gateway:git*"},
		{"gateway:", ""},
		{"gateway:**", ""},
		{"gateway:GitHub", ""},
		{"gateway:a/b/c", ""},
		{"gateway:-x", ""},
	} {
		g, err := ParseGrant(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseGrant(%q): got %v; want an error", tc.in, g)
		case tc.want != "" && (err != nil || g.String() != tc.want):
			t.Errorf("ParseGrant(%q): got %v, %v; want %s", tc.in, g, err, tc.want)
		}
	}
}

func TestGrantAllows(t *testing.T) {
	for _, tc := range []struct {
		grant, action, p, e, n string
		want                   bool
	}{
		{"read:payments/prod/*", "read", "payments", "prod", "STRIPE_KEY", true},
		{"read:payments/prod/*", "write", "payments", "prod", "STRIPE_KEY", false},
		{"read:payments/prod/*", "read", "payments", "dev", "STRIPE_KEY", false},
		{"read:payments/prod/*", "read", "other", "prod", "STRIPE_KEY", false},
		{"read:payments/*/STRIPE_*", "read", "payments", "dev", "STRIPE_KEY", true},
		{"read:payments/*/STRIPE_*", "read", "payments", "dev", "STRIPE", false},
		{"read:payments/*/*_KEY", "read", "payments", "dev", "STRIPE_KEY", true},
		{"read:payments/*/*_KEY", "read", "payments", "dev", "STRIPE_KEYS", false},
		{"admin:payments/*/*", "read", "payments", "prod", "X", true},
		{"admin:payments/*/*", "rotate", "payments", "prod", "X", true},
		{"admin:payments/*/*", "read", "other", "prod", "X", false},
		{"write:*/*/*", "read", "a", "b", "C", false},
	} {
		g := MustParseGrant(tc.grant)
		if got := g.Allows(Action(tc.action), tc.p, tc.e, tc.n); got != tc.want {
			t.Errorf("%s allows %s %s/%s/%s: got %v; want %v", tc.grant, tc.action, tc.p, tc.e, tc.n, got, tc.want)
		}
	}
}

func TestGrantsAllowsEveryName(t *testing.T) {
	for _, tc := range []struct {
		grants []string
		action string
		want   bool
	}{
		{[]string{"read:payments/prod/*"}, "read", true},
		{[]string{"read:payments/*/*"}, "read", true},
		{[]string{"admin:*/*/*"}, "read", true},
		{[]string{"read:payments/prod/STRIPE_*"}, "read", false},
		{[]string{"read:payments/prod/*_KEY"}, "read", false},
		{[]string{"read:payments/prod/KEY"}, "read", false},
		{[]string{"read:payments/prod/STRIPE_*", "read:payments/prod/*_KEY"}, "read", false},
		{[]string{"read:payments/prod/KEY", "read:payments/*/*"}, "read", true},
		{[]string{"read:payments/prod/*"}, "write", false},
		{[]string{"read:payments/dev/*"}, "read", false},
		{[]string{"read:other/prod/*"}, "read", false},
		{[]string{"gateway:*"}, "read", false},
		{nil, "read", false},
	} {
		var gs Grants
		for _, g := range tc.grants {
			gs = append(gs, MustParseGrant(g))
		}
		if got := gs.AllowsEveryName(Action(tc.action), "payments", "prod"); got != tc.want {
			t.Errorf("%v allows %s of every name of payments/prod: got %v; want %v", tc.grants, tc.action, got, tc.want)
		}
	}
}

func TestGrantCovers(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		covers     bool
	}{
		{"read:payments/prod/*", "read:payments/prod/STRIPE_KEY", true},
		{"read:payments/prod/*", "read:payments/prod/S*", true},
		{"read:payments/prod/S*", "read:payments/prod/ST*", true},
		{"read:payments/prod/ST*", "read:payments/prod/S*", false},
		{"read:payments/prod/*_KEY", "read:payments/prod/A*_KEY", true},
		{"read:payments/prod/*_KEY", "read:payments/prod/*", false},
		{"read:payments/*/*", "read:payments/prod/*", true},
		{"read:payments/prod/*", "read:payments/*/*", false},
		{"read:*/*/*", "read:payments/prod/X", true},
		{"admin:*/*/*", "write:payments/prod/X", true},
		{"write:*/*/*", "admin:payments/prod/X", false},
		{"read:payments/prod/X", "read:payments/prod/X", true},
	} {
		got := MustParseGrant(tc.have).Covers(MustParseGrant(tc.want))
		if got != tc.covers {
			t.Errorf("%s covers %s: got %v; want %v", tc.have, tc.want, got, tc.covers)
		}
	}
}

// FuzzParseGrant checks that parse and print round-trip and that Covers is
// sound: a grant that covers another allows every name the other allows.
func FuzzParseGrant(f *testing.F) {
	f.Add("read:payments/prod/STRIPE_*", "STRIPE_KEY", "read:payments/prod/*")
	f.Add("admin:*/*/*", "X", "write:a/b/C*D")
	f.Fuzz(func(t *testing.T, s, name, other string) {
		g, err := ParseGrant(s)
		if err != nil {
			if len(s) > 70 && strings.Contains(err.Error(), s) {
				t.Fatal("error holds the whole unbounded input")
			}
			return
		}
		back, err := ParseGrant(g.String())
		if err != nil || back != g {
			t.Fatalf("round trip: %q -> %q (%v)", s, g.String(), err)
		}
		o, err := ParseGrant(other)
		if err != nil || ValidateSecretName(name) != nil {
			return
		}
		if g.Covers(o) && o.Allows(o.Action, "p", "e", name) && o.Project == "*" && o.Env == "*" && !g.Allows(o.Action, "p", "e", name) {
			t.Fatalf("%s covers %s but does not allow %s", g, o, name)
		}
		if g.Covers(o) && GlobMatch(o.Name, name) && !GlobMatch(g.Name, name) {
			t.Fatalf("%s covers %s but its name does not match %s", g, o, name)
		}
	})
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		fn   func(string) error
		in   string
		want bool
	}{
		{ValidateProjectName, "payments", true},
		{ValidateProjectName, "pay-ments2", true},
		{ValidateProjectName, "-payments", false},
		{ValidateProjectName, "payments-", false},
		{ValidateProjectName, "Payments", false},
		{ValidateProjectName, "pay_ments", false},
		{ValidateProjectName, "", false},
		{ValidateProjectName, strings.Repeat("a", 63), true},
		{ValidateProjectName, strings.Repeat("a", 64), false},
		{ValidateEnvName, "prod", true},
		{ValidateEnvName, "prod/x", false},
		{ValidateSecretName, "STRIPE_KEY", true},
		{ValidateSecretName, "_x9", true},
		{ValidateSecretName, "9x", false},
		{ValidateSecretName, "A-B", false},
		{ValidateSecretName, "A B", false},
		{ValidateSecretName, "", false},
		{ValidateSecretName, "ÄB", false},
	} {
		if err := tc.fn(tc.in); (err == nil) != tc.want {
			t.Errorf("validate %q: got %v; want ok=%v", tc.in, err, tc.want)
		}
	}
}

func FuzzValidateNames(f *testing.F) {
	f.Add("payments")
	f.Add("STRIPE_KEY")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateProjectName(s) == nil {
			if len(s) == 0 || len(s) > MaxNameLen || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || s[0] == '-' || s[len(s)-1] == '-' {
				t.Fatalf("accepted project name %q", s)
			}
		}
		if ValidateSecretName(s) == nil {
			if strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != "" || (s[0] >= '0' && s[0] <= '9') {
				t.Fatalf("accepted secret name %q", s)
			}
		}
		// Printable keeps at most 67 bytes of the input and %q at most
		// doubles them (a quote or backslash is escaped): with the fixed
		// text, a message stays well under 256 bytes whatever the input.
		for _, fn := range []func(string) error{ValidateProjectName, ValidateSecretName, ValidateTokenName} {
			if err := fn(s); err != nil && len(err.Error()) > 256 {
				t.Fatalf("error message is unbounded: %d bytes", len(err.Error()))
			}
		}
	})
}

// TestGatewayGrants: a gateway grant allows its routes and nothing else,
// and only a gateway grant or a full admin covers one.
func TestGatewayGrants(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		covers     bool
	}{
		{"gateway:github", "gateway:github", true},
		{"gateway:*", "gateway:github", true},
		{"gateway:git*", "gateway:github", true},
		{"gateway:github", "gateway:gitlab", false},
		{"gateway:github", "gateway:*", false},
		{"admin:*/*/*", "gateway:github", true},
		{"admin:*/*/*", "gateway:*", true},
		{"admin:payments/*/*", "gateway:github", false},
		{"admin:*/*/git*", "gateway:github", false},
		{"read:*/*/*", "gateway:github", false},
		{"gateway:*", "read:payments/prod/KEY", false},
		{"gateway:*", "admin:*/*/*", false},
	} {
		got := MustParseGrant(tc.have).Covers(MustParseGrant(tc.want))
		if got != tc.covers {
			t.Errorf("%s covers %s: got %v; want %v", tc.have, tc.want, got, tc.covers)
		}
	}
	gs := Grants{MustParseGrant("gateway:github")}
	if !gs.AllowsRoute("github") || gs.AllowsRoute("gitlab") {
		t.Errorf("gateway:github: AllowsRoute(github)=%v, AllowsRoute(gitlab)=%v; want true, false", gs.AllowsRoute("github"), gs.AllowsRoute("gitlab"))
	}
	if (Grant{Action: ActionGateway, Name: "*"}).Covers(Grant{Action: ActionGateway, Project: "payments", Name: "*"}) {
		t.Error("gateway:* covers a grant naming a project; want not")
	}
	if gs.Allows(ActionRead, "github", "*", "*") || gs.AllowsAnyIn(ActionGateway, "github", "x") || gs.Allows(ActionAdmin, "", "", "github") {
		t.Error("a gateway grant allows something on secrets; want nothing")
	}
}
