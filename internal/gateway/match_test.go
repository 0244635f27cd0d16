package gateway_test

import (
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/gateway"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: refused
	}{
		{"", []string{}},
		{"/", []string{}},
		{"/repos/acme/x", []string{"repos", "acme", "x"}},
		{"/repos/acme/x/", []string{"repos", "acme", "x", ""}},
		{"/repos/a%20b", []string{"repos", "a b"}},
		{"/repos/acme/../other", nil},
		{"/repos/acme/%2e%2e/other", nil},
		{"/repos/acme/%2E/x", nil},
		{"/repos/acme%2fother", nil},
		{"/repos/acme%2Fother", nil},
		{"/repos/acme%5cother", nil},
		{"/repos/acme\\..\\other", nil},
		{"/repos/acme%252fother", nil},
		{"/repos//acme", nil},
		{"/repos/acme/..;/other", nil},
		{"/repos/%00", nil},
		{"/repos/%zz", nil},
		{"repos/acme", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := gateway.CheckPath(tt.in)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %q; want refused", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		rule, method, path string
		want               bool
	}{
		{"GET /repos/acme/*", "GET", "/repos/acme/x", true},
		{"GET /repos/acme/*", "GET", "/repos/acme/x/pulls", false},
		{"GET /repos/acme/*", "POST", "/repos/acme/x", false},
		{"GET /repos/acme/*", "GET", "/repos/acme", false},
		{"GET /repos/acme/*", "GET", "/repos/acme/", false},
		{"GET /repos/acme/*", "GET", "/repos/acmex/x", false},
		{"POST /repos/acme/*/issues", "POST", "/repos/acme/x/issues", true},
		{"POST /repos/acme/*/issues", "POST", "/repos/acme/x/y/issues", false},
		{"GET /repos/acme/**", "GET", "/repos/acme/x/y/z", true},
		{"GET /repos/acme/**", "GET", "/repos/acme", false},
		{"* /v1/*", "DELETE", "/v1/x", true},
		{"GET /repos/acme-*", "GET", "/repos/acme-web", true},
		{"GET /repos/acme-*", "GET", "/repos/other", false},
		{"GET /items/", "GET", "/items/", true},
		{"GET /items/", "GET", "/items", false},
		{"GET /", "GET", "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.rule+" "+tt.method+" "+tt.path, func(t *testing.T) {
			r, err := gateway.ParseRule(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != tt.rule {
				t.Errorf("String: got %q; want %q", r.String(), tt.rule)
			}
			segs, err := gateway.CheckPath(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Matches(tt.method, segs); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"GET", "get /x", "GET x", "GET /a/**/b", "GET /a/../b", "GET /a%2fb", "GET /a//b", "GET /a/b**", "GET /a;b"} {
		if _, err := gateway.ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q): got nil; want an error", bad)
		}
	}
}

// FuzzCheckPath: a path CheckPath accepts means to any upstream what its
// segments say. Decoded in one go, it splits into the same segments (no
// hidden '/'); it has no dot segment and no '//' for a cleaner to resolve;
// decoding it again changes nothing (no double encoding); and a rule that
// allows it allows exactly its literal segments.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/repos/acme/x", "/repos/acme/%2e%2e/x", "/a%2fb", "/a/./b", "/%252e%252e/", "/a/b/", "/a%20b/c", "//x", "/a\\b", "/..;/x"} {
		f.Add(s)
	}
	rule, _ := gateway.ParseRule("GET /repos/acme/*")
	f.Fuzz(func(t *testing.T, p string) {
		segs, err := gateway.CheckPath(p)
		if err != nil {
			return
		}
		dec, err := url.PathUnescape(p)
		if err != nil {
			t.Fatalf("%q accepted, but does not decode: %v", p, err)
		}
		if dec == "" {
			dec = "/"
		}
		want := strings.Split(dec[1:], "/")
		if len(want) == 1 && want[0] == "" {
			want = []string{}
		}
		if !slices.Equal(segs, want) {
			t.Fatalf("%q: segments %q; decoded whole it is %q", p, segs, want)
		}
		trimmed := strings.TrimSuffix(dec, "/")
		if trimmed != "" && path.Clean(trimmed) != trimmed {
			t.Fatalf("%q decodes to %q, which a cleaner changes to %q", p, dec, path.Clean(trimmed))
		}
		if again, err := url.PathUnescape(dec); err != nil || again != dec || strings.Contains(dec, "\\") {
			t.Fatalf("%q decodes to %q, and further to %q (%v)", p, dec, again, err)
		}
		if rule.Matches("GET", segs) && (len(segs) != 3 || segs[0] != "repos" || segs[1] != "acme" || segs[2] == "") {
			t.Fatalf("%q (%q) allowed by %s", p, segs, rule)
		}
	})
}
