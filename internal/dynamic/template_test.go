package dynamic

import (
	"testing"

	"github.com/tokenward/tokenward"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"CREATE ROLE {{name}} PASSWORD {{password}}", "CREATE ROLE N PASSWORD P", true},
		{"CREATE ROLE {{ name }} VALID UNTIL {{expiration}} IN ROLE {{group}};", "CREATE ROLE N VALID UNTIL E IN ROLE G;", true},
		{"SELECT 1", "SELECT 1", true},
		{"", "", true},
		{"{{name}}{{name}}", "NN", true},
		{"DROP ROLE {{user}}", "", false},
		{"DROP ROLE {{name}", "", false},
		{"DROP ROLE name}}", "", false},
		{"a }} b {{name}}", "", false},
		{"{{}}", "", false},
		{"x\x00y", "", false},
	}
	vals := map[string]string{"name": "N", "password": "P", "expiration": "E", "group": "G"}
	for _, tt := range tests {
		tpl, err := ParseTemplate(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseTemplate(%q): got error %v; want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Errorf("ParseTemplate(%q): got code %q; want invalid", tt.in, tokenward.ErrorCode(err))
			}
			continue
		}
		got, err := tpl.Render(vals)
		if err != nil || got != tt.want {
			t.Errorf("Render(%q): got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	tpl, _ := ParseTemplate("DROP ROLE {{name}}; REASSIGN OWNED BY {{name}} TO {{group}}")
	if _, err := tpl.Render(map[string]string{"name": "x"}); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("render without group: got %v; want invalid", err)
	}
	if !tpl.Uses("group") || tpl.Uses("password") {
		t.Errorf("Uses: got group=%v password=%v; want true, false", tpl.Uses("group"), tpl.Uses("password"))
	}
}

// FuzzTemplate: parsing never panics, and a parsed template's canonical
// form parses to the same canonical form and renders the same.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{DefaultCreationSQL, DefaultRevocationSQL, "{{ name }}", "{{x}}", "}}{{", "{{name}"} {
		f.Add(s)
	}
	vals := map[string]string{"name": `"n"`, "password": "'p'", "expiration": "'e'", "group": `"g"`}
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := ParseTemplate(s)
		if err != nil {
			return
		}
		again, err := ParseTemplate(tpl.String())
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", tpl.String(), err)
		}
		if again.String() != tpl.String() {
			t.Fatalf("canonical form moved: %q then %q", tpl.String(), again.String())
		}
		a, err1 := tpl.Render(vals)
		b, err2 := again.Render(vals)
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("renders differ: %q, %v; %q, %v", a, err1, b, err2)
		}
	})
}
