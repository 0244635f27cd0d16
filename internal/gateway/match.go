package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tokenward/tokenward"
)

// A call's path is matched segment by segment, after each segment is
// decoded once, and the path is refused unless that decoding is the whole
// story: no segment that decodes to or holds '/', '\\', '%', ';', a
// control character, "." or "..", and no empty segment but a final one (a
// trailing slash). So the path an upstream sees — however often it decodes
// it, whatever dot segments or path parameters it would resolve — has the
// segments the allow rules were checked against.

// CheckPath checks the escaped path of a call (what follows /gw/<route>,
// "" for none) and returns its decoded segments.
func CheckPath(escaped string) ([]string, error) {
	if escaped == "" {
		escaped = "/"
	}
	if escaped[0] != '/' {
		return nil, badPath("it does not start with '/'")
	}
	raw := strings.Split(escaped[1:], "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		if r == "" && i < len(raw)-1 {
			return nil, badPath("it has an empty segment ('//')")
		}
		s, err := url.PathUnescape(r)
		if err != nil {
			return nil, badPath("it has a malformed percent escape")
		}
		if s == "." || s == ".." {
			return nil, badPath("it has a '.' or '..' segment")
		}
		for j := 0; j < len(s); j++ {
			switch c := s[j]; {
			case c == '/' || c == '\\':
				return nil, badPath("a segment holds an encoded '/' or '\\'")
			case c == '%':
				return nil, badPath("a segment holds an encoded '%' (double encoding)")
			case c == ';':
				return nil, badPath("a segment holds ';' (path parameters)")
			case c < 0x20 || c == 0x7f:
				return nil, badPath("a segment holds a control character")
			}
		}
		segs[i] = s
	}
	if len(segs) == 1 && segs[0] == "" {
		return []string{}, nil
	}
	return segs, nil
}

func badPath(why string) error {
	return tokenward.Errorf(tokenward.EINVALID, "path refused: %s", why)
}

// Rule is one allow rule: a method ("*" for any) and a path pattern whose
// segments are literals, globs in which '*' matches any run of characters
// within a segment (never an empty segment), or a final "**" matching one
// or more segments.
type Rule struct {
	Method string
	Segs   []string
}

// ParseRule parses "METHOD /path/pattern".
func ParseRule(s string) (Rule, error) {
	bad := func(why string) (Rule, error) {
		return Rule{}, tokenward.Errorf(tokenward.EINVALID, "allow rule %q: %s (want METHOD /path/pattern, e.g. 'GET /repos/acme/*')", tokenward.Printable(s), why)
	}
	method, p, ok := strings.Cut(s, " ")
	if !ok {
		return bad("no path")
	}
	if method != "*" {
		if method == "" || len(method) > 16 {
			return bad("bad method")
		}
		for i := 0; i < len(method); i++ {
			if c := method[i]; c < 'A' || c > 'Z' {
				return bad("the method must be upper case letters or *")
			}
		}
	}
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "/") {
		return bad("the path must start with '/'")
	}
	segs := strings.Split(p[1:], "/")
	if len(segs) == 1 && segs[0] == "" {
		segs = []string{}
	}
	for i, seg := range segs {
		switch {
		case seg == "**":
			if i != len(segs)-1 {
				return bad("'**' may only be the last segment")
			}
		case seg == "" && i < len(segs)-1:
			return bad("empty segment")
		case seg == "." || seg == "..":
			return bad("'.' or '..' segment")
		case strings.Contains(seg, "**"):
			return bad("'**' must be a whole segment")
		case strings.ContainsAny(seg, "%\\;?#") || strings.ContainsFunc(seg, func(r rune) bool { return r < 0x21 || r == 0x7f }):
			return bad("a segment holds '%', '\\', ';', '?', '#', a space or a control character")
		}
	}
	return Rule{Method: method, Segs: segs}, nil
}

// String is r as ParseRule reads it.
func (r Rule) String() string { return r.Method + " /" + strings.Join(r.Segs, "/") }

// Matches reports whether r allows method on the decoded segments segs.
func (r Rule) Matches(method string, segs []string) bool {
	if r.Method != "*" && r.Method != method {
		return false
	}
	for i, pat := range r.Segs {
		if pat == "**" {
			return len(segs) > i
		}
		if i >= len(segs) {
			return false
		}
		if !matchSeg(pat, segs[i]) {
			return false
		}
	}
	return len(segs) == len(r.Segs)
}

func matchSeg(pat, seg string) bool {
	if !strings.Contains(pat, "*") {
		return pat == seg
	}
	return seg != "" && tokenward.GlobMatch(pat, seg)
}

// Allowed reports whether any rule allows method on segs.
func Allowed(rules []Rule, method string, segs []string) bool {
	for _, r := range rules {
		if r.Matches(method, segs) {
			return true
		}
	}
	return false
}

// methodOverrideHeaders are the request headers by which common frameworks
// take a call (mostly a POST) for another method: Rack (Rails), Symfony
// and Laravel, ASP.NET Core, Express's method-override, Google's APIs
// (X-HTTP-Method-Override), OData (X-HTTP-Method).
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// Methods returns the methods an upstream may act on r as: r's own, then,
// upper-cased, each one a method-override header of r or a _method query
// parameter names (Symfony and Laravel read it from the query). An
// upstream that honours an override acts on the method it names, so the
// allow rules must allow each of them. Header names are compared as CGI
// servers read them (oneOf), and parameter names as PHP does ('.' and ' '
// as '_').
func Methods(r *http.Request) []string {
	ms := []string{r.Method}
	add := func(v string) {
		for m := range strings.SplitSeq(v, ",") {
			if m = strings.ToUpper(strings.TrimSpace(m)); m != "" && !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
	}
	for k, vs := range r.Header {
		if oneOf(k, methodOverrideHeaders) {
			for _, v := range vs {
				add(v)
			}
		}
	}
	if r.URL.RawQuery != "" {
		// ';' separates too, as for some parsers (Rack's before 3.0); a
		// pair with a malformed escape is left out, as it names no method.
		q, _ := url.ParseQuery(strings.ReplaceAll(r.URL.RawQuery, ";", "&"))
		for k, vs := range q {
			if strings.Map(func(c rune) rune {
				if c == '.' || c == ' ' {
					return '_'
				}
				return c
			}, k) == "_method" {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	return ms
}

// oneOf reports whether the header name k is one of names as a CGI server
// (PHP's FastCGI, Rack's) reads it: in any case, '_' as '-'.
func oneOf(k string, names []string) bool {
	k = strings.ReplaceAll(k, "_", "-")
	return slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, k) })
}
