package dynamic

import (
	"strings"

	"github.com/tokenward/tokenward"
)

// MaxTemplateLen bounds a creation or revocation SQL template.
const MaxTemplateLen = 16 << 10

// Template is SQL with placeholders: {{name}} (the role, quoted as an
// identifier), {{password}} (its SCRAM verifier, quoted as a literal —
// never the password), {{expiration}} (when it stops working, a quoted
// timestamp) and {{group}} (the group role, quoted as an identifier).
// Values are quoted here, so a template cannot forget to.
type Template struct {
	parts []string // literal text and placeholder names, alternately (literal first)
}

var placeholders = []string{"name", "password", "expiration", "group"}

// ParseTemplate parses s; an unknown or unclosed placeholder is EINVALID.
func ParseTemplate(s string) (*Template, error) {
	if len(s) > MaxTemplateLen {
		return nil, tokenward.Errorf(tokenward.EINVALID, "sql template is longer than %d bytes", MaxTemplateLen)
	}
	if strings.ContainsRune(s, 0) {
		return nil, tokenward.Errorf(tokenward.EINVALID, "sql template holds a NUL byte")
	}
	t := &Template{}
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return nil, tokenward.Errorf(tokenward.EINVALID, "sql template: }} without {{")
			}
			t.parts = append(t.parts, rest)
			return t, nil
		}
		lit := rest[:i]
		if strings.Contains(lit, "}}") {
			return nil, tokenward.Errorf(tokenward.EINVALID, "sql template: }} without {{")
		}
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return nil, tokenward.Errorf(tokenward.EINVALID, "sql template: {{ without }}")
		}
		name := strings.TrimSpace(rest[i+2 : i+2+j])
		known := false
		for _, p := range placeholders {
			known = known || p == name
		}
		if !known {
			return nil, tokenward.Errorf(tokenward.EINVALID, "sql template: unknown placeholder {{%s}}: want {{name}}, {{password}}, {{expiration}} or {{group}}", tokenward.Printable(name))
		}
		t.parts = append(t.parts, lit, name)
		rest = rest[i+2+j+2:]
	}
}

// Uses reports whether the template has placeholder name.
func (t *Template) Uses(name string) bool {
	for i := 1; i < len(t.parts); i += 2 {
		if t.parts[i] == name {
			return true
		}
	}
	return false
}

// String is the template as written, with placeholders in canonical form.
func (t *Template) String() string {
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 1 {
			b.WriteString("{{" + p + "}}")
			continue
		}
		b.WriteString(p)
	}
	return b.String()
}

// Render fills the placeholders with vals, already quoted; a placeholder
// without a value is EINVALID.
func (t *Template) Render(vals map[string]string) (string, error) {
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		v, ok := vals[p]
		if !ok {
			return "", tokenward.Errorf(tokenward.EINVALID, "sql template: {{%s}} has no value here", p)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
