//go:build !tokenward_client

package main

import (
	"maps"
	"strings"
	"testing"
)

func TestParseRotationConfig(t *testing.T) {
	tests := []struct {
		in      []string
		want    map[string]string
		invalid bool
	}{
		{nil, nil, false},
		{[]string{"dsn_secret=payments/prod/DB_ADMIN_URL,role=app"}, map[string]string{"dsn_secret": "payments/prod/DB_ADMIN_URL", "role": "app"}, false},
		{[]string{"role=app", "format=json"}, map[string]string{"role": "app", "format": "json"}, false},
		// values may hold commas and '=' when no key follows
		{[]string{`command=/bin/rot,args=["a,b","c=d"],timeout=30s`}, map[string]string{"command": "/bin/rot", "args": `["a,b","c=d"]`, "timeout": "30s"}, false},
		{[]string{"url=https://h/p?a=1&b=2,key_secret=p/e/K"}, map[string]string{"url": "https://h/p?a=1&b=2", "key_secret": "p/e/K"}, false},
		{[]string{"template=sk_{{rand 24}}"}, map[string]string{"template": "sk_{{rand 24}}"}, false},
		{[]string{"role"}, nil, true},
		{[]string{"=x"}, nil, true},
		{[]string{"role=a,role=b"}, nil, true},
		{[]string{"role=a", "role=b"}, nil, true},
	}
	for _, tt := range tests {
		got, err := parseRotationConfig(tt.in)
		if (err != nil) != tt.invalid || !maps.Equal(got, tt.want) {
			t.Errorf("parseRotationConfig(%q): got %v, %v; want %v, invalid %v", tt.in, got, err, tt.want, tt.invalid)
		}
	}
}

func FuzzParseRotationConfig(f *testing.F) {
	for _, s := range []string{"a=b", "a=b,c=d", `command=/x,args=["1,2"]`, ",", "=", "a=,b="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseRotationConfig([]string{s})
		if err != nil {
			return
		}
		// Whatever parses gives back its pieces: keys are non-empty and
		// joining the pairs again yields the input.
		var parts []string
		for k, v := range got {
			if k == "" {
				t.Fatalf("empty key from %q", s)
			}
			parts = append(parts, k+"="+v)
		}
		if n := len(strings.Join(parts, ",")); n != len(s) {
			t.Fatalf("parsed %q into %v (length %d); want the input's length %d", s, got, n, len(s))
		}
	})
}
