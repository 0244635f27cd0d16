package rotate

import (
	"context"
	"crypto/rand"
	"io"
	"math/big"
	"strconv"
	"strings"

	"github.com/tokenward/tokenward"
)

// Named alphabets for the random rotator and templates.
var alphabets = map[string]string{
	"alnum":     "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
	"lower":     "abcdefghijklmnopqrstuvwxyz0123456789",
	"upper":     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
	"hex":       "0123456789abcdef",
	"digits":    "0123456789",
	"base64url": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
}

// Limits on generated values.
const (
	MaxRandomLen   = 4096
	maxTemplateLen = 1024
)

// Random is the "random" rotator: a new value of a given length and
// alphabet, or from a template such as "sk_{{rand 32}}". Nothing upstream
// changes, so Set, Test and Revoke do nothing.
//
// Config: length (default 32), alphabet (a name: alnum, lower, upper, hex,
// digits, base64url; or the characters themselves; default alnum), or
// template (exclusive with length and alphabet).
type Random struct {
	// Rand is the source of randomness; crypto/rand when nil.
	Rand io.Reader
}

// Validate implements Rotator.
func (r *Random) Validate(config map[string]string) error {
	_, err := parseRandomConfig(config)
	return err
}

func parseRandomConfig(config map[string]string) (*Template, error) {
	for k := range config {
		switch k {
		case "length", "alphabet", "template":
		default:
			return nil, errInvalid("random rotator: unknown config key %q", tokenward.Printable(k))
		}
	}
	if t, ok := config["template"]; ok {
		if _, ok := config["length"]; ok {
			return nil, errInvalid("random rotator: give template or length/alphabet, not both")
		}
		if _, ok := config["alphabet"]; ok {
			return nil, errInvalid("random rotator: give template or length/alphabet, not both")
		}
		return ParseTemplate(t)
	}
	n := 32
	if s, ok := config["length"]; ok {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > MaxRandomLen {
			return nil, errInvalid("random rotator: length %q: want 1 to %d", tokenward.Printable(s), MaxRandomLen)
		}
	}
	alpha, err := alphabet(config["alphabet"])
	if err != nil {
		return nil, err
	}
	return &Template{parts: []templatePart{{n: n, alphabet: alpha, name: config["alphabet"]}}}, nil
}

// alphabet resolves a named alphabet or a literal set of printable ASCII
// characters (at least 2, no repeats).
func alphabet(s string) (string, error) {
	if s == "" {
		return alphabets["alnum"], nil
	}
	if a, ok := alphabets[s]; ok {
		return a, nil
	}
	if len(s) < 2 || len(s) > 256 {
		return "", errInvalid("alphabet %q: want a name (alnum, lower, upper, hex, digits, base64url) or 2 to 256 characters", tokenward.Printable(s))
	}
	var seen [256]bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || seen[c] {
			return "", errInvalid("alphabet %q: want distinct printable ASCII characters without spaces", tokenward.Printable(s))
		}
		seen[c] = true
	}
	return s, nil
}

// Create implements Rotator.
func (r *Random) Create(_ context.Context, req *Request) ([]byte, error) {
	t, err := parseRandomConfig(req.Config)
	if err != nil {
		return nil, err
	}
	src := r.Rand
	if src == nil {
		src = rand.Reader
	}
	return t.Execute(src)
}

// Set implements Rotator; there is nothing upstream.
func (r *Random) Set(context.Context, *Request) error { return nil }

// Test implements Rotator; there is nothing upstream.
func (r *Random) Test(context.Context, *Request) error { return nil }

// Revoke implements Rotator; there is nothing upstream.
func (r *Random) Revoke(context.Context, *Request) error { return nil }

// Template is a parsed value template: literal text with actions
// "{{rand N}}" or "{{rand N ALPHABET}}" (ALPHABET a name as for the random
// rotator). "{{" always opens an action; there is no escape.
type Template struct {
	parts []templatePart
}

type templatePart struct {
	lit      string
	n        int // > 0: an action
	alphabet string
	name     string // the alphabet as written, for String
}

// ParseTemplate parses s.
func ParseTemplate(s string) (*Template, error) {
	if len(s) > maxTemplateLen {
		return nil, errInvalid("template is longer than %d characters", maxTemplateLen)
	}
	t := &Template{}
	total, rest := 0, s
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			i = len(rest)
		}
		if strings.Contains(rest[:i], "}}") {
			return nil, errInvalid("template %q: unmatched }}", tokenward.Printable(s))
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{lit: rest[:i]})
			total += i
		}
		rest = rest[i:]
		if rest == "" {
			break
		}
		j := strings.Index(rest, "}}")
		if j < 0 {
			return nil, errInvalid("template %q: unclosed {{", tokenward.Printable(s))
		}
		fields := strings.Fields(rest[2:j])
		rest = rest[j+2:]
		if len(fields) < 2 || len(fields) > 3 || fields[0] != "rand" {
			return nil, errInvalid("template %q: want {{rand N}} or {{rand N ALPHABET}}", tokenward.Printable(s))
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil || n < 1 || n > MaxRandomLen || fields[1][0] == '+' || fields[1][0] == '0' {
			return nil, errInvalid("template %q: rand length: want 1 to %d", tokenward.Printable(s), MaxRandomLen)
		}
		p := templatePart{n: n, alphabet: alphabets["alnum"]}
		if len(fields) == 3 {
			a, ok := alphabets[fields[2]]
			if !ok {
				return nil, errInvalid("template %q: unknown alphabet %q", tokenward.Printable(s), tokenward.Printable(fields[2]))
			}
			p.alphabet, p.name = a, fields[2]
		}
		t.parts = append(t.parts, p)
		total += n
	}
	if total == 0 || total > MaxRandomLen {
		return nil, errInvalid("template %q: want a value of 1 to %d characters", tokenward.Printable(s), MaxRandomLen)
	}
	hasRand := false
	for _, p := range t.parts {
		hasRand = hasRand || p.n > 0
	}
	if !hasRand {
		return nil, errInvalid("template %q has no {{rand N}}: the value would never change", tokenward.Printable(s))
	}
	return t, nil
}

// String returns the template in its canonical form; parsing it again gives
// the same template.
func (t *Template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.n == 0 {
			b.WriteString(p.lit)
			continue
		}
		b.WriteString("{{rand ")
		b.WriteString(strconv.Itoa(p.n))
		if p.name != "" {
			b.WriteString(" " + p.name)
		}
		b.WriteString("}}")
	}
	return b.String()
}

// Execute renders a value, drawing each random character uniformly.
func (t *Template) Execute(src io.Reader) ([]byte, error) {
	var out []byte
	for _, p := range t.parts {
		if p.n == 0 {
			out = append(out, p.lit...)
			continue
		}
		max := big.NewInt(int64(len(p.alphabet)))
		for range p.n {
			i, err := rand.Int(src, max)
			if err != nil {
				return nil, err
			}
			out = append(out, p.alphabet[i.Int64()])
		}
	}
	return out, nil
}
