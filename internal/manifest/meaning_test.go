package manifest

import (
	"strings"
	"testing"
)

// TestErrorsNeverEchoValues: more places a token pasted by mistake
// reached an error message (which CI prints to its log): a grant, a tag, a
// dynamic source's kind and an alias (a value starting with '*').
func TestErrorsNeverEchoValues(t *testing.T) {
	const leak = "sk_live_51HvYzQ2eZvKYlo2C0FAKEFAKEFAKE"
	pl := func(grant string) string {
		return base + "pipelines:\n  d:\n    preset: github\n    claims: {ref: main}\n    grants: ['" + grant + "']\n"
	}
	tests := []struct {
		name, in string
	}{
		{"a token as a grant", pl(leak)},
		{"a token as a grant's resource", pl("read:" + leak)},
		{"a token as a grant's name", pl("read:payments/prod/" + leak + "-x")},
		{"a token as a gateway grant", pl("gateway:" + leak)},
		{"a long token as a tag", base + "secrets:\n  A: {tags: [" + leak + leak + "]}\n"},
		{"a token as a dynamic kind", base + "secrets:\n  A:\ndynamic:\n  D: {kind: " + leak + ", admin_secret: A, ttl: 1h}\n"},
		{"a value starting with '*'", base + "secrets:\n  A:\nrotation:\n  A: {every: 1d, rotator: random, config: {password: *" + leak + "}}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tt.in))
			if err == nil {
				t.Fatal("got no error; want one")
			}
			if strings.Contains(err.Error(), leak[:20]) {
				t.Errorf("error echoes the value: %q", err)
			}
		})
	}
}

// TestRefusesWhatChangesMeaning: YAML that the parser read as
// something other than what it says, or that the server refuses after the
// plan was printed.
func TestRefusesWhatChangesMeaning(t *testing.T) {
	pl := func(extra string) string {
		return base + "pipelines:\n  d:\n    preset: github\n    claims: {ref: main}\n    grants: ['read:payments/prod/*']\n" + extra
	}
	src := func(extra string) string {
		return base + "secrets:\n  A:\ndynamic:\n  D: {kind: postgres, admin_secret: A, ttl: 1h, " + extra + "}\n"
	}
	tests := []struct {
		name, in, want string
	}{
		// !!bool with a YAML 1.1 spelling: read as false, with no error.
		{"enabled: !!bool yes", pl("    enabled: !!bool yes\n"), "m.yaml:8:14: pipeline d: enabled: want true or false"},
		{"skip_check: !!bool on", src("skip_check: !!bool on"), "dynamic D: skip_check: want true or false"},
		// An empty audience list: a binding with no audience, which the
		// server refuses only after the plan promised it.
		{"audience: []", pl("    audience: []\n"), "m.yaml:8:15: pipeline d: audience: an empty list"},
		// !!binary: the base64 text was taken as the value.
		{"!!binary claim", base + "pipelines:\n  d:\n    preset: github\n    claims: {ref: !!binary bWFpbg==}\n    grants: ['read:payments/prod/*']\n",
			"pipeline d: claims: ref: want a string, got binary data"},
		{"!!binary config", base + "secrets:\n  A:\nrotation:\n  A: {every: 1d, rotator: random, config: {password: !!binary c2VjcmV0}}\n",
			"rotation A: config: password: want a string, got binary data"},
		// A local tag (another tool's !ref, !vault) is dropped silently.
		{"local tag", base + "secrets:\n  A:\nrotation:\n  A: {every: 1d, rotator: random, config: {dsn_secret: !vault payments/prod/DB}}\n",
			"rotation A: config: dsn_secret: want a string, got a tagged value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error containing %q", err, tt.want)
			}
		})
	}
}
