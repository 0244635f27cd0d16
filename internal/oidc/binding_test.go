package oidc

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokenward/tokenward"
)

func mustConditions(tb testing.TB, ss ...string) []ClaimCondition {
	tb.Helper()
	cs, err := ParseClaimConditions(ss)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

func validBinding(tb testing.TB) *Binding {
	tb.Helper()
	return &Binding{
		Name:      "deploy-prod",
		Issuer:    "https://token.actions.githubusercontent.com",
		Audiences: []string{"tokenward"},
		Claims:    mustConditions(tb, "repository=acme/payments", "ref=refs/heads/main"),
		Grants:    tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")},
		TTL:       15 * time.Minute,
		Enabled:   true,
	}
}

func TestBindingValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(b *Binding)
		want   string // "" = valid; else a substring of the error
	}{
		{"valid", func(b *Binding) {}, ""},
		{"loopback http issuer", func(b *Binding) { b.Issuer = "http://127.0.0.1:8080" }, ""},
		{"localhost http issuer", func(b *Binding) { b.Issuer = "http://localhost:8080/path" }, ""},
		{"TTL at cap", func(b *Binding) { b.TTL = DefaultMaxTTL }, ""},
		{"no claims", func(b *Binding) { b.Claims = nil }, "it would trust every repository"},
		{"bad name", func(b *Binding) { b.Name = "Deploy Prod" }, "not a lowercase DNS label"},
		{"empty name", func(b *Binding) { b.Name = "" }, "binding name is empty"},
		{"http issuer", func(b *Binding) { b.Issuer = "http://gitlab.example.com" }, "must use https"},
		{"ftp issuer", func(b *Binding) { b.Issuer = "ftp://gitlab.example.com" }, "must use https"},
		{"issuer with query", func(b *Binding) { b.Issuer = "https://gitlab.example.com/?x=1" }, "no query"},
		{"issuer without host", func(b *Binding) { b.Issuer = "https:///path" }, "with a host"},
		{"no issuer", func(b *Binding) { b.Issuer = "" }, "issuer is empty"},
		{"no audience", func(b *Binding) { b.Audiences = nil }, "no audience"},
		{"empty audience", func(b *Binding) { b.Audiences = []string{""} }, "audience"},
		{"no grants", func(b *Binding) { b.Grants = nil }, "no grants"},
		{"bad grant", func(b *Binding) { b.Grants = tokenward.Grants{{Action: "fly", Project: "p", Env: "e", Name: "*"}} }, "unknown action"},
		{"zero TTL", func(b *Binding) { b.TTL = 0 }, "TTL must be positive"},
		{"TTL above cap", func(b *Binding) { b.TTL = DefaultMaxTTL + time.Second }, "above the cap"},
		{"bad condition op", func(b *Binding) { b.Claims[0].Op = "regex" }, "unknown match"},
		{"match-all glob", func(b *Binding) { b.Claims[0] = ClaimCondition{Claim: "ref", Op: MatchGlob, Values: []string{"**"}} }, "matches every value"},
		{"glob without star", func(b *Binding) { b.Claims[0] = ClaimCondition{Claim: "ref", Op: MatchGlob, Values: []string{"main"}} }, "has no '*'"},
		{"two exact values", func(b *Binding) {
			b.Claims[0] = ClaimCondition{Claim: "ref", Op: MatchExact, Values: []string{"a", "b"}}
		}, "exactly one value"},
		{"control character", func(b *Binding) { b.Claims[0] = ClaimCondition{Claim: "ref", Op: MatchExact, Values: []string{"a\nb"}} }, "non-printable"},
		{"too many conditions", func(b *Binding) {
			for range MaxClaimConditions {
				b.Claims = append(b.Claims, b.Claims[0])
			}
		}, "claim conditions (at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBinding(t)
			tt.change(b)
			err := b.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v; want no error", err)
			case tt.want != "" && err == nil:
				t.Fatalf("got no error; want one containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("got %v; want it to contain %q", err, tt.want)
			case err != nil && tokenward.ErrorCode(err) != tokenward.EINVALID:
				t.Fatalf("got code %s; want %s", tokenward.ErrorCode(err), tokenward.EINVALID)
			}
		})
	}
}

func TestBindingValidateMaxTTL(t *testing.T) {
	b := validBinding(t)
	b.TTL = 2 * time.Hour
	if err := b.ValidateMaxTTL(3 * time.Hour); err != nil {
		t.Fatalf("got %v; want a 2h TTL valid under a 3h cap", err)
	}
	if err := b.ValidateMaxTTL(time.Hour); err == nil {
		t.Fatalf("got no error; want a 2h TTL refused under a 1h cap")
	}
}

func TestParseClaimCondition(t *testing.T) {
	tests := []struct {
		in      string
		want    ClaimCondition
		wantErr string
	}{
		{in: "repository=acme/payments", want: ClaimCondition{"repository", MatchExact, []string{"acme/payments"}}},
		{in: "ref=refs/heads/release-*", want: ClaimCondition{"ref", MatchGlob, []string{"refs/heads/release-*"}}},
		{in: "environment=staging|production", want: ClaimCondition{"environment", MatchOneOf, []string{"staging", "production"}}},
		{in: "ref=refs/heads/main|refs/tags/v*", want: ClaimCondition{"ref", MatchOneOf, []string{"refs/heads/main", "refs/tags/v*"}}},
		{in: "ref_protected=true", want: ClaimCondition{"ref_protected", MatchExact, []string{"true"}}},
		{in: "sub=repo:acme/x:ref:refs/heads/main", want: ClaimCondition{"sub", MatchExact, []string{"repo:acme/x:ref:refs/heads/main"}}},
		{in: "workflow_ref=a=b", want: ClaimCondition{"workflow_ref", MatchExact, []string{"a=b"}}},
		{in: "repository", wantErr: "want key=value"},
		{in: "=acme", wantErr: "claim name is empty"},
		{in: "repository=", wantErr: "empty value"},
		{in: "ref=a||b", wantErr: "empty value"},
		{in: "ref=*", wantErr: "matches every value"},
		{in: "ref=main|*", wantErr: "matches every value"},
		{in: "bad name=x", wantErr: "outside [A-Za-z0-9_.:-]"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseClaimCondition(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v; want %v", err, tt.want)
			}
			if got.Claim != tt.want.Claim || got.Op != tt.want.Op || !slices.Equal(got.Values, tt.want.Values) {
				t.Fatalf("got %+v; want %+v", got, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("got String() %q; want %q", got.String(), tt.in)
			}
		})
	}
}

func TestClaimConditionMatch(t *testing.T) {
	tests := []struct {
		cond  string
		value string
		want  bool
	}{
		{"ref=refs/heads/main", "refs/heads/main", true},
		{"ref=refs/heads/main", "refs/heads/main2", false},
		{"ref=refs/heads/main", "refs/heads/mai", false},
		{"ref=refs/heads/main", "REFS/HEADS/MAIN", false},
		{"ref=refs/heads/release-*", "refs/heads/release-1.2", true},
		{"ref=refs/heads/release-*", "refs/heads/release-", true},
		{"ref=refs/heads/release-*", "refs/heads/release-x/y", true},
		{"ref=refs/heads/release-*", "refs/heads/main", false},
		{"ref=refs/heads/release-*", "xrefs/heads/release-1", false},
		{"repository=acme/*", "acme-evil/payments", false},
		{"repository=acme/*", "acme/payments", true},
		{"sub=repo:acme/*:environment:prod*", "repo:acme/x:environment:production", true},
		// "*" crosses ":" too: why docs/oidc.md advises conditions on dedicated
		// claims over globs of sub.
		{"sub=repo:acme/*:environment:prod*", "repo:acme/x:ref:refs/heads/a:environment:prod", true},
		{"sub=*:environment:production", "repo:acme/x:environment:staging", false},
		{"environment=staging|production", "production", true},
		{"environment=staging|production", "staging", true},
		{"environment=staging|production", "dev", false},
		{"environment=staging|production", "staging|production", false},
		{"ref=refs/heads/main|refs/tags/v*", "refs/tags/v1.0", true},
		{"ref=refs/heads/main|refs/tags/v*", "refs/tags/x1.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.cond+"~"+tt.value, func(t *testing.T) {
			c := mustConditions(t, tt.cond)[0]
			if got := c.Match(tt.value); got != tt.want {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestPresets(t *testing.T) {
	b := &Binding{Name: "ci"}
	if err := b.ApplyPreset("github"); err != nil {
		t.Fatal(err)
	}
	if got, want := b.Issuer, "https://token.actions.githubusercontent.com"; got != want {
		t.Fatalf("got issuer %q; want %q", got, want)
	}
	b.Claims = mustConditions(t, "repository=acme/payments", "repo=acme/payments", "sub=repo:acme/*")
	w := b.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], `"repo"`) {
		t.Fatalf("got warnings %q; want one about claim \"repo\"", w)
	}

	gl := &Binding{Name: "ci"}
	if err := gl.ApplyPreset("gitlab"); err != nil {
		t.Fatal(err)
	}
	if got, want := gl.Issuer, "https://gitlab.com"; got != want {
		t.Fatalf("got issuer %q; want %q", got, want)
	}
	gl.Claims = mustConditions(t, "project_path=acme/payments", "ref_protected=true", "repository=acme/payments")
	if w := gl.Warnings(); len(w) != 1 || !strings.Contains(w[0], `"repository"`) {
		t.Fatalf("got warnings %q; want one about claim \"repository\" (a GitHub claim)", w)
	}
	// groups_direct is a claim GitLab issues, but an array: never matched.
	gl.Claims = mustConditions(t, "project_path=acme/payments", "groups_direct=acme/ops")
	if w := gl.Warnings(); len(w) != 1 || !strings.Contains(w[0], `"groups_direct" is an array`) {
		t.Fatalf("got warnings %q; want one about the array claim groups_direct", w)
	}

	if err := (&Binding{}).ApplyPreset("jenkins"); err == nil || !strings.Contains(err.Error(), "github or gitlab") {
		t.Fatalf("got %v; want an unknown-preset error listing github or gitlab", err)
	}
	other := &Binding{Issuer: "https://gitlab.example.com"}
	if err := other.ApplyPreset("gitlab"); err == nil {
		t.Fatalf("got no error; want a preset refused over a different issuer")
	}
	custom := &Binding{Issuer: "https://ci.example.com", Claims: mustConditions(t, "anything=x")}
	if w := custom.Warnings(); len(w) != 0 {
		t.Fatalf("got warnings %q; want none for an issuer without a preset", w)
	}
}

// FuzzParseClaimCondition checks that the parser never panics, that what it
// accepts is valid and prints back to itself, and that an exact condition
// matches its own value.
func FuzzParseClaimCondition(f *testing.F) {
	for _, s := range []string{"repository=acme/payments", "ref=refs/heads/release-*", "environment=a|b|c", "x=*", "=", "a=b=c", "ref=|", "k=a*|b"} {
		f.Add(s, "refs/heads/release-1")
	}
	f.Fuzz(func(t *testing.T, s, value string) {
		c, err := ParseClaimCondition(s)
		if err != nil {
			if tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Fatalf("got code %s; want %s", tokenward.ErrorCode(err), tokenward.EINVALID)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed %q to %+v, which does not validate: %v", s, c, err)
		}
		if c.String() != s {
			t.Fatalf("got String() %q; want %q", c.String(), s)
		}
		again, err := ParseClaimCondition(c.String())
		if err != nil || again.Op != c.Op || !slices.Equal(again.Values, c.Values) {
			t.Fatalf("reparse of %q: got %+v, %v; want %+v", c.String(), again, err, c)
		}
		if c.Op == MatchExact && !c.Match(c.Values[0]) {
			t.Fatalf("exact condition %q does not match its own value", s)
		}
		if c.Op == MatchExact && value != c.Values[0] && c.Match(value) {
			t.Fatalf("exact condition %q matches %q", s, value)
		}
		_ = c.Match(value)
	})
}

// FuzzGlobMatch checks globMatch against a regular expression that means
// the same.
func FuzzGlobMatch(f *testing.F) {
	f.Add("refs/heads/release-*", "refs/heads/release-1")
	f.Add("a*b*c", "aXbYc")
	f.Add("*a*", "bbb")
	f.Add("**", "")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 {
			return
		}
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re, err := regexp.Compile(`^(?s:` + strings.Join(parts, ".*") + `)$`)
		if err != nil {
			t.Skip()
		}
		// Go regexps work on runes; compare on valid UTF-8 only, where byte
		// and rune matching agree.
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			_ = tokenward.GlobMatch(pattern, s)
			return
		}
		if got, want := tokenward.GlobMatch(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("tokenward.GlobMatch(%q, %q): got %v; want %v", pattern, s, got, want)
		}
	})
}

func TestConditionFromValues(t *testing.T) {
	tests := []struct {
		values  []string
		wantOp  MatchOp
		match   string
		wantErr bool
	}{
		{[]string{"acme/payments"}, MatchExact, "acme/payments", false},
		{[]string{"refs/heads/release-*"}, MatchGlob, "refs/heads/release-9", false},
		{[]string{"refs/heads/main", "refs/tags/v*"}, MatchOneOf, "refs/tags/v2", false},
		{[]string{"a*b"}, MatchGlob, "aXXb", false},
		{nil, "", "", true},
		{[]string{"*"}, "", "", true},
		{[]string{""}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.values, ","), func(t *testing.T) {
			c, err := ConditionFromValues("ref", tt.values)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %+v; want an error", c)
				}
				return
			}
			if err != nil || c.Op != tt.wantOp || !c.Match(tt.match) {
				t.Fatalf("got %+v, %v (match %q: %v); want op %s matching", c, err, tt.match, c.Match(tt.match), tt.wantOp)
			}
		})
	}
}
