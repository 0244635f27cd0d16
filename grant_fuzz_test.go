package tokenward

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzGrantJSON checks the JSON form of grants, which tokens, bindings and
// stored records carry: a grant decodes from JSON exactly when its string
// parses with ParseGrant, to the same grant, and encodes back to that
// string; a list of grants survives encode → decode.
func FuzzGrantJSON(f *testing.F) {
	for _, s := range []string{`"read:payments/prod/STRIPE_*"`, `"admin:*/*/*"`, `"read:payments/prod/*/x"`, `"READ:a/b/C"`, `"read:a/b/**"`, `"read:a\u002fb/c/D"`, `"read:a/b/C"x`, `1`, `null`, `["read:a/b/C"]`, `"\ud800"`, `"gateway:github"`, `"gateway:*"`, `"gateway:a/b/c"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var g Grant
		err := json.Unmarshal(b, &g)
		var s string
		if json.Unmarshal(b, &s) != nil {
			if err == nil && string(b) != "null" {
				t.Fatalf("decoded %s, which is not a JSON string, to %v", b, g)
			}
			return
		}
		p, perr := ParseGrant(s)
		if (err == nil) != (perr == nil) {
			t.Fatalf("%s: UnmarshalJSON says %v; ParseGrant(%q) says %v", b, err, s, perr)
		}
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("%s: got code %q; want %q", b, ErrorCode(err), EINVALID)
			}
			return
		}
		if g != p {
			t.Fatalf("%s: got %+v; want ParseGrant's %+v", b, g, p)
		}
		out, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := json.Marshal(g.String()); string(out) != string(want) {
			t.Fatalf("got %s; want the string form %s", out, want)
		}
		list, _ := json.Marshal(Grants{g, g})
		var back Grants
		if err := json.Unmarshal(list, &back); err != nil || len(back) != 2 || back[0] != g || back[1] != g {
			t.Fatalf("list round trip of %s: got %v, %v; want two of %v", list, back, err, g)
		}
	})
}

// FuzzAllowsEveryName: where AllowsEveryName holds, Allows holds for any
// name, and where a grant's name pattern is not stars alone it does not
// hold by that grant.
func FuzzAllowsEveryName(f *testing.F) {
	for _, s := range [][2]string{{"read:p/e/*", "KEY"}, {"read:p/e/**", ""}, {"read:p/e/A*", "A"}, {"read:*/e/*", "*"}, {"admin:*/*/*", "x"}, {"read:p/*/K*Y", "KY"}, {"gateway:*", "x"}, {"write:p/e/*", "K"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, grant, name string) {
		g, err := ParseGrant(grant)
		if err != nil {
			return
		}
		gs := Grants{g}
		for _, a := range []Action{ActionRead, ActionWrite} {
			every := gs.AllowsEveryName(a, "p", "e")
			if every && !gs.Allows(a, "p", "e", name) {
				t.Fatalf("%s: allows every name of p/e for %s, but not %q", grant, a, name)
			}
			if every && strings.Trim(g.Name, "*") != "" {
				t.Fatalf("%s: allows every name of p/e for %s with a name pattern of more than stars", grant, a)
			}
		}
	})
}
