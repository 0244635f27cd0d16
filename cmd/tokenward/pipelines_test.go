//go:build !tokenward_client

package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/client"
)

func TestParseEnvRefs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string // joined refs, or "error"
	}{
		{[]string{"payments/prod"}, "payments/prod"},
		{[]string{"shared/prod", "payments/prod"}, "shared/prod payments/prod"},
		{nil, "error"},
		{[]string{"payments"}, "error"},
		{[]string{"payments/prod/KEY"}, "error"},
		{[]string{"Payments/prod"}, "error"},
		{[]string{"payments/"}, "error"},
		{[]string{"payments/pr od"}, "error"},
	} {
		refs, err := parseEnvRefs(tc.in)
		got := strings.Join(envStrings(refs), " ")
		if err != nil {
			got = "error"
			if exitCode(err) != 2 {
				t.Errorf("parseEnvRefs(%q): exit code %d; want 2 (usage)", tc.in, exitCode(err))
			}
		}
		if got != tc.want {
			t.Errorf("parseEnvRefs(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

// The fallback must be used only when the server could not answer, and
// the snapshot deleted only when it refused the token.
func TestFallbackErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		err                 error
		unreachable, denied bool
	}{
		{fmt.Errorf("fetch payments/prod: %w", fmt.Errorf("%w: http://x: connection refused", client.ErrUnreachable)), true, false},
		{fmt.Errorf("fetch payments/prod: %w", tokenward.Errorf(tokenward.EUNAVAILABLE, "audit down")), true, false},
		{fmt.Errorf("fetch payments/prod: %w", tokenward.Errorf(tokenward.EUNAUTHORIZED, "token revoked")), false, true},
		{fmt.Errorf("fetch payments/prod: %w", tokenward.Errorf(tokenward.EFORBIDDEN, "not granted")), false, true},
		{fmt.Errorf("fetch payments/prod: %w", tokenward.Errorf(tokenward.ENOTFOUND, "no env")), false, true},
		{fmt.Errorf("fetch payments/prod: %w", tokenward.Errorf(tokenward.EINTERNAL, "server answered 502")), false, false},
		{errors.New("decode answer"), false, false},
	} {
		if got := unreachable(tc.err); got != tc.unreachable {
			t.Errorf("unreachable(%v): got %v; want %v", tc.err, got, tc.unreachable)
		}
		if got := denied(tc.err); got != tc.denied {
			t.Errorf("denied(%v): got %v; want %v", tc.err, got, tc.denied)
		}
	}
}

func FuzzParseEnvRefs(f *testing.F) {
	f.Add("payments/prod", "shared/dev")
	f.Add("a/b/c", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		refs, err := parseEnvRefs([]string{a, b})
		if err != nil {
			if len(err.Error()) > 300 {
				t.Fatalf("error message is unbounded: %d bytes", len(err.Error()))
			}
			return
		}
		for i, r := range refs {
			if tokenward.ValidateProjectName(r.project) != nil || tokenward.ValidateEnvName(r.env) != nil {
				t.Fatalf("accepted %q", r)
			}
			if r.String() != []string{a, b}[i] {
				t.Fatalf("round trip: %q -> %q", []string{a, b}[i], r)
			}
		}
	})
}

// TestPipelineDocsUseRealFlags keeps the CI files and docs true: every
// --flag they pass to run, export, check or apply exists on the command.
func TestPipelineDocsUseRealFlags(t *testing.T) {
	root := NewMain().rootCommand()
	cmdRe := regexp.MustCompile(`tokenward (run|export|check|apply)\b([^\n]*)`)
	flagRe := regexp.MustCompile(`(?:^|\s)--([a-z][a-z0-9-]*)`)
	seen := 0
	for _, path := range []string{"../../action.yml", "../../ci/gitlab/tokenward.gitlab-ci.yml", "../../docs/ci.md", "../../docs/manifest.md", "../../docs/run-and-export.md", "../../README.md"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cmdRe.FindAllStringSubmatch(string(data), -1) {
			sub, _, err := root.Find([]string{m[1]})
			if err != nil || sub.Name() != m[1] {
				t.Fatalf("%s: no command %s", path, m[1])
			}
			rest := m[2]
			// Flags after " -- " are the child's; after " #" a comment's.
			for _, stop := range []string{" -- ", " #"} {
				if i := strings.Index(rest, stop); i >= 0 {
					rest = rest[:i]
				}
			}
			for _, f := range flagRe.FindAllStringSubmatch(rest, -1) {
				seen++
				if sub.Flags().Lookup(f[1]) == nil {
					t.Errorf("%s: tokenward %s --%s: no such flag", path, m[1], f[1])
				}
			}
		}
	}
	t.Logf("checked %d flags", seen)
	if seen < 40 {
		t.Errorf("checked %d flags; want at least 40 (did the files move?)", seen)
	}
}
