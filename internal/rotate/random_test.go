package rotate

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRandomRotatorConfigs(t *testing.T) {
	tests := []struct {
		name    string
		config  map[string]string
		wantLen int
		prefix  string
		charset string
		wantErr bool
	}{
		{"default", nil, 32, "", alphabets["alnum"], false},
		{"length and hex", map[string]string{"length": "40", "alphabet": "hex"}, 40, "", "0123456789abcdef", false},
		{"literal alphabet", map[string]string{"length": "8", "alphabet": "xyz"}, 8, "", "xyz", false},
		{"template", map[string]string{"template": "sk_{{rand 32}}"}, 35, "sk_", alphabets["alnum"] + "sk_", false},
		{"template two parts", map[string]string{"template": "ak_{{ rand 4 digits }}-{{rand 6 hex}}"}, 14, "ak_", "0123456789abcdef_-ak", false},
		{"zero length", map[string]string{"length": "0"}, 0, "", "", true},
		{"too long", map[string]string{"length": "4097"}, 0, "", "", true},
		{"repeated alphabet", map[string]string{"alphabet": "aab"}, 0, "", "", true},
		{"template and length", map[string]string{"template": "{{rand 3}}", "length": "3"}, 0, "", "", true},
		{"unknown key", map[string]string{"size": "3"}, 0, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Random{}
			if err := r.Validate(tt.config); (err != nil) != tt.wantErr {
				t.Fatalf("Validate: got %v; want error %v", err, tt.wantErr)
			}
			v, err := r.Create(context.Background(), &Request{Config: tt.config})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Create: got nil; want an error")
				}
				return
			}
			if err != nil || len(v) != tt.wantLen || !bytes.HasPrefix(v, []byte(tt.prefix)) {
				t.Fatalf("Create: got %d bytes prefix-ok %v, %v; want %d bytes with prefix %q",
					len(v), bytes.HasPrefix(v, []byte(tt.prefix)), err, tt.wantLen, tt.prefix)
			}
			for _, c := range string(v) {
				if !strings.ContainsRune(tt.charset, c) {
					t.Fatalf("Create: got character %q; want one of %q", c, tt.charset)
				}
			}
			w, _ := r.Create(context.Background(), &Request{Config: tt.config})
			if bytes.Equal(v, w) {
				t.Fatalf("two values are equal; want fresh randomness")
			}
		})
	}
}

func TestParseTemplateErrors(t *testing.T) {
	for _, s := range []string{
		"", "plain", "sk_{{rand 32}", "sk_}}", "{{rand}}", "{{rand x}}", "{{rand 0}}", "{{rand 03}}",
		"{{rand +3}}", "{{rand 3 nope}}", "{{other 3}}", "{{rand 3 hex extra}}", "{{rand 5000}}",
		"{{rand 4096}}{{rand 1}}",
	} {
		if _, err := ParseTemplate(s); err == nil {
			t.Errorf("ParseTemplate(%q): got nil; want an error", s)
		}
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"sk_{{rand 32}}", "{{ rand 4 hex }}-{{rand 2}}", "a{b}c{{rand 1 digits}}}", "{{", "}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := ParseTemplate(s)
		if err != nil {
			return
		}
		canon := tpl.String()
		again, err := ParseTemplate(canon)
		if err != nil {
			t.Fatalf("ParseTemplate(String()) of %q: %v", s, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: got %q; want %q", again.String(), canon)
		}
		v, err := tpl.Execute(strings.NewReader(strings.Repeat("\x01\x02\x03", MaxRandomLen*4)))
		if err != nil {
			return // the fixed reader may run dry
		}
		if len(v) == 0 || len(v) > MaxRandomLen {
			t.Fatalf("Execute: got %d bytes; want 1 to %d", len(v), MaxRandomLen)
		}
	})
}
