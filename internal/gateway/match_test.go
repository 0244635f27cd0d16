package gateway_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
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

// TestMethodOverrides: a call is judged by every method an upstream may
// act on it as — its own, and one a method-override header (however its
// name is spelt) or a _method query parameter names — so a route that
// allows POST on a path does not let a caller DELETE it on an upstream
// that honours overrides (Rails, Symfony, Laravel, ASP.NET Core, Express,
// Google's APIs).
func TestMethodOverrides(t *testing.T) {
	rt, err := gateway.Compile(&tokenward.GatewayRoute{Name: "r", Upstream: "https://api.example", Secret: "acme/prod/TOKEN",
		Inject: "header:X-Key={{value}}", Allow: []string{"POST /items/*", "GET /items/*", "PATCH /items/*/labels"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, target string
		header         map[string]string
		want           []string
		refused        string
	}{
		{"POST", "/items/1", nil, []string{"POST"}, ""},
		{"POST", "/items/1", map[string]string{"X-HTTP-Method-Override": "DELETE"}, []string{"POST", "DELETE"}, "DELETE"},
		{"POST", "/items/1", map[string]string{"X-HTTP-Method-Override": "delete"}, []string{"POST", "DELETE"}, "DELETE"},
		{"POST", "/items/1", map[string]string{"X_HTTP_METHOD_OVERRIDE": "PUT"}, []string{"POST", "PUT"}, "PUT"},
		{"POST", "/items/1", map[string]string{"X-HTTP-Method": "MERGE"}, []string{"POST", "MERGE"}, "MERGE"},
		{"POST", "/items/1", map[string]string{"X-Method-Override": "GET, DELETE"}, []string{"POST", "GET", "DELETE"}, "DELETE"},
		{"POST", "/items/1", map[string]string{"X-HTTP-Method-Override": "GET"}, []string{"POST", "GET"}, ""},
		{"POST", "/items/1", map[string]string{"X-HTTP-Method-Override": "POST"}, []string{"POST"}, ""},
		{"POST", "/items/1?_method=DELETE", nil, []string{"POST", "DELETE"}, "DELETE"},
		{"POST", "/items/1?.method=delete", nil, []string{"POST", "DELETE"}, "DELETE"},
		{"POST", "/items/1?a=1;_method=PUT", nil, []string{"POST", "PUT"}, "PUT"},
		{"POST", "/items/1?%5Fmethod=PUT", nil, []string{"POST", "PUT"}, "PUT"},
		{"POST", "/items/1?method=DELETE&_methods=DELETE", nil, []string{"POST"}, ""},
		{"GET", "/items/1?_method=GET", nil, []string{"GET"}, ""},
		{"POST", "/items/1/labels", map[string]string{"X-HTTP-Method-Override": "PATCH"}, []string{"POST", "PATCH"}, "POST"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.method, tt.target, tt.header), func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://tokenward.example/gw/r"+tt.target, nil)
			for k, v := range tt.header {
				r.Header[k] = []string{v} // as sent: X_HTTP_METHOD_OVERRIDE is not canonicalised
			}
			if got := gateway.Methods(r); !slices.Equal(got, tt.want) {
				t.Errorf("Methods: got %q; want %q", got, tt.want)
			}
			segs, err := gateway.CheckPath(r.URL.EscapedPath()[len("/gw/r"):])
			if err != nil {
				t.Fatal(err)
			}
			if m, refused := rt.Refuses(r, segs); m != tt.refused || refused != (tt.refused != "") {
				t.Errorf("Refuses: got %q, %v; want %q", m, refused, tt.refused)
			}
		})
	}
}
