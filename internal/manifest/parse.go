package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/rotate"
	"gopkg.in/yaml.v3"
)

// Error is one problem in a manifest, at a place in it. Its message names
// keys but never echoes a value: a value pasted into the wrong place may be
// a secret, and the position finds it.
type Error struct {
	File   string
	Line   int // from 1; always set
	Column int // from 1; 0 when unknown
	Msg    string
}

func (e *Error) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap lets tokenward.ErrorCode see a manifest error as EINVALID.
func (e *Error) Unwrap() error { return &tokenward.Error{Code: tokenward.EINVALID, Message: e.Error()} }

// ErrorList is every problem found in a manifest, in file order. Parse
// returns one (never empty) instead of stopping at the first problem.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns each error, for errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// maxErrors bounds the errors one parse reports.
const maxErrors = 50

// ParseFile reads and parses the manifest at path.
func ParseFile(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and validates a manifest; file names it in errors. The
// error, when not nil, is an ErrorList.
func Parse(file string, data []byte) (*Manifest, error) {
	p := &parser{file: file}
	m := p.parse(data)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, p.errs
	}
	m.File = file
	return m, nil
}

type parser struct {
	file string
	errs ErrorList
}

func (p *parser) errAt(line, col int, format string, args ...any) {
	if len(p.errs) >= maxErrors {
		return
	}
	if line < 1 {
		line = 1
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errAt(n.Line, n.Column, format, args...)
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

// yamlLine finds the line in a yaml.v3 syntax error ("yaml: line 3: ...").
// This package's patterns are compiled on first use, not at every start of
// the binary.
var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

func (p *parser) parse(data []byte) *Manifest {
	if len(data) > MaxSize {
		p.errAt(1, 0, "manifest is larger than %d bytes", MaxSize)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errAt(1, 0, "manifest is empty")
			return nil
		}
		p.yamlError(err)
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.errAt(next.Line, next.Column, "manifest holds more than one YAML document")
		return nil
	} else if !errors.Is(err, io.EOF) {
		p.yamlError(err)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.errAt(1, 0, "manifest is empty")
		return nil
	}
	return p.manifest(doc.Content[0])
}

// yamlAnchor finds yaml.v3's two messages that quote an anchor's name.
var yamlAnchor = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^yaml: (?:unknown anchor '.*' referenced|anchor '.*' value contains itself)$`)
})

// yamlError reports a syntax error. yaml.v3's messages hold the parser's
// complaint, not the document's text, so they are safe to pass on, but for
// an alias's name: a value that starts with '*' (a password) is an alias
// to YAML, and its "unknown anchor" message quoted the rest of it.
func (p *parser) yamlError(err error) {
	msg := err.Error()
	if yamlAnchor().MatchString(msg) {
		if strings.HasPrefix(msg, "yaml: unknown anchor") {
			p.errAt(1, 0, "invalid YAML: an alias (*name) refers to no anchor (&name) before it; quote a value that starts with '*'")
		} else {
			p.errAt(1, 0, "invalid YAML: an anchor's value contains an alias to itself")
		}
		return
	}
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.errAt(line, 0, "invalid YAML: %s", m[2])
		return
	}
	// A message without a line (bad encoding, a control character) is
	// about the file as a whole.
	p.errAt(1, 0, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// pair is one key and value of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// deref follows an alias to its anchor. The schema only nests a bounded
// depth and lists hold scalars, so following aliases cannot blow up.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// kindName says what a node is, for "want X, got Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!binary":
			return "binary data"
		}
		if !plainTag(n.Tag) {
			return "a tagged value"
		}
		return "a string"
	}
	return "an alias"
}

// pairs returns the entries of a mapping, reporting a node that is not one,
// keys that are not strings, merge keys and duplicate keys.
func (p *parser) pairs(n *yaml.Node, what string) []pair {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping, got %s", what, kindName(n))
		return nil
	}
	seen := map[string]*yaml.Node{}
	var out []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			p.errorf(k, "%s: a key must be a string, got %s", what, kindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			p.errorf(k, "%s: merge keys (<<) are not supported", what)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(k, "%s: duplicate key %q (first at line %d)", what, shortKey(k.Value), first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{key: k.Value, k: k, v: v})
	}
	return out
}

// fields checks a fixed-schema mapping's keys and returns its values by key.
func (p *parser) fields(n *yaml.Node, what string, allowed ...string) map[string]pair {
	out := map[string]pair{}
	for _, kv := range p.pairs(n, what) {
		ok := false
		for _, a := range allowed {
			if kv.key == a {
				ok = true
				break
			}
		}
		if !ok {
			p.errorf(kv.k, "%s: unknown key %q (want one of %s)", what, shortKey(kv.key), strings.Join(allowed, ", "))
			continue
		}
		out[kv.key] = kv
	}
	return out
}

// shortKey keeps a key echoed in an error printable and short. Keys are
// names, not values, but a stray paste may still land in one.
func shortKey(s string) string {
	const max = 40
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	if len(s) > max {
		b.WriteString("...")
	}
	return b.String()
}

// plainTag reports whether a scalar's tag keeps its text as written:
// YAML's core scalar tags, or the non-specific "!". Another tag (!!binary,
// another tool's !vault or !ref) says the text means something else, which
// the manifest would not honour: it is refused, not read as the text.
func plainTag(tag string) bool {
	switch tag {
	case "", "!", "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		return true
	}
	return false
}

// str returns a scalar as a string; numbers and booleans are read as their
// text (owner: 42 is the owner "42"), null is an error, as is a tag that
// gives the text another meaning (!!binary).
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || !plainTag(n.Tag) {
		p.errorf(n, "%s: want a string, got %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

// strs returns a list of scalars; if one is true a single scalar is read as
// a list of one.
func (p *parser) strs(n *yaml.Node, what string, one bool) ([]string, []*yaml.Node, bool) {
	n = deref(n)
	if one && n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		v, ok := p.str(n, what)
		if !ok {
			return nil, nil, false
		}
		return []string{v}, []*yaml.Node{n}, true
	}
	if n.Kind != yaml.SequenceNode {
		if one {
			p.errorf(n, "%s: want a string or a list of strings, got %s", what, kindName(n))
		} else {
			p.errorf(n, "%s: want a list, got %s", what, kindName(n))
		}
		return nil, nil, false
	}
	var vals []string
	var nodes []*yaml.Node
	ok := true
	for _, c := range n.Content {
		v, good := p.str(c, what+" item")
		if !good {
			ok = false
			continue
		}
		vals = append(vals, v)
		nodes = append(nodes, deref(c))
	}
	return vals, nodes, ok
}

// duration reads a positive manifest duration.
func (p *parser) duration(n *yaml.Node, what string) (time.Duration, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s: want a duration like 30d, 12h or 2w, got %s", what, kindName(n))
		return 0, false
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		p.errorf(n, "%s: %v", what, err)
		return 0, false
	}
	if d <= 0 {
		p.errorf(n, "%s: duration must be more than zero", what)
		return 0, false
	}
	return d, true
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errorf(n, "%s: want true or false, got %s", what, kindName(n))
		return false, false
	}
	// YAML's booleans are also True and TRUE (tagged !!bool, spelt as written).
	// An explicit tag on another spelling (!!bool yes) is refused: it was
	// read as false.
	switch n.Value {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	p.errorf(n, "%s: want true or false", what)
	return false, false
}

func (p *parser) manifest(root *yaml.Node) *Manifest {
	m := &Manifest{}
	top := p.fields(root, "manifest", "project", "environments", "secrets", "pipelines", "rotation", "dynamic")
	if root = deref(root); root.Kind != yaml.MappingNode {
		return m
	}
	if kv, ok := top["project"]; ok {
		if name, ok := p.str(kv.v, "project"); ok {
			if tokenward.ValidateProjectName(name) != nil {
				p.errorf(kv.v, "project: not a valid project name (a lowercase DNS label: a-z, 0-9, inner '-', at most %d characters)", tokenward.MaxNameLen)
			}
			m.Project, m.ProjectPos = name, pos(deref(kv.v))
		}
	} else {
		p.errorf(root, "manifest: missing key \"project\"")
	}
	if kv, ok := top["environments"]; ok {
		m.Environments = p.environments(kv.v)
	} else {
		p.errorf(root, "manifest: missing key \"environments\"")
	}
	if kv, ok := top["secrets"]; ok && !isNull(kv.v) {
		for _, s := range p.pairs(kv.v, "secrets") {
			if sec := p.secret(m, s); sec != nil {
				m.Secrets = append(m.Secrets, sec)
			}
		}
	}
	if kv, ok := top["pipelines"]; ok && !isNull(kv.v) {
		for _, s := range p.pairs(kv.v, "pipelines") {
			if pl := p.pipeline(m, s); pl != nil {
				m.Pipelines = append(m.Pipelines, pl)
			}
		}
	}
	if kv, ok := top["rotation"]; ok && !isNull(kv.v) {
		for _, s := range p.pairs(kv.v, "rotation") {
			if r := p.rotation(m, s); r != nil {
				m.Rotation = append(m.Rotation, r)
			}
		}
	}
	if kv, ok := top["dynamic"]; ok && !isNull(kv.v) {
		for _, s := range p.pairs(kv.v, "dynamic") {
			if d := p.dynamic(m, s); d != nil {
				m.Dynamic = append(m.Dynamic, d)
			}
		}
	}
	return m
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func (p *parser) environments(n *yaml.Node) []Env {
	names, nodes, _ := p.strs(n, "environments", false)
	if n = deref(n); n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		p.errorf(n, "environments: declare at least one environment")
	}
	var out []Env
	seen := map[string]int{}
	for i, name := range names {
		if tokenward.ValidateEnvName(name) != nil {
			p.errorf(nodes[i], "environments: not a valid environment name (a lowercase DNS label: a-z, 0-9, inner '-', at most %d characters)", tokenward.MaxNameLen)
			continue
		}
		if line, dup := seen[name]; dup {
			p.errorf(nodes[i], "environments: %q is listed twice (first at line %d)", name, line)
			continue
		}
		seen[name] = nodes[i].Line
		out = append(out, Env{Name: name, Pos: pos(nodes[i])})
	}
	return out
}

// envList reads a list of declared environment names.
func (p *parser) envList(m *Manifest, n *yaml.Node, what string) ([]string, bool) {
	names, nodes, ok := p.strs(n, what, false)
	if !ok {
		return nil, false
	}
	if len(names) == 0 {
		p.errorf(deref(n), "%s: an empty list (leave the key out to mean every environment)", what)
		return nil, false
	}
	want := map[string]bool{}
	for i, name := range names {
		switch {
		case tokenward.ValidateEnvName(name) != nil:
			p.errorf(nodes[i], "%s: not a valid environment name", what)
			ok = false
		case !m.HasEnv(name):
			p.errorf(nodes[i], "%s: unknown environment %q (declared: %s)", what, name, m.envList())
			ok = false
		case want[name]:
			p.errorf(nodes[i], "%s: %q is listed twice", what, name)
			ok = false
		}
		want[name] = true
	}
	if !ok {
		return nil, false
	}
	// Keep the manifest's order of environments, whatever the list's.
	var out []string
	for _, e := range m.Environments {
		if want[e.Name] {
			out = append(out, e.Name)
		}
	}
	return out, true
}

func (p *parser) secret(m *Manifest, kv pair) *Secret {
	what := "secret " + shortKey(kv.key)
	if tokenward.ValidateSecretName(kv.key) != nil {
		p.errorf(kv.k, "secrets: key is not a valid secret name (an environment variable name: [A-Za-z_][A-Za-z0-9_]*, at most %d characters)", tokenward.MaxSecretNameLen)
		return nil
	}
	s := &Secret{Name: kv.key, Pos: pos(kv.k)}
	ok := true
	if !isNull(kv.v) { // "DB_URL:" alone declares a secret with no settings
		f := p.fields(kv.v, what, "environments", "owner", "description", "tags", "rotate", "warn_before_expiry")
		if e, has := f["environments"]; has {
			s.Environments, ok = p.envList(m, e.v, what+": environments")
		}
		if v, has := f["owner"]; has {
			s.Owner, _ = p.str(v.v, what+": owner")
		}
		if v, has := f["description"]; has {
			s.Description, _ = p.str(v.v, what+": description")
		}
		var tagNodes []*yaml.Node
		if v, has := f["tags"]; has {
			s.Tags, tagNodes, _ = p.strs(v.v, what+": tags", false)
		}
		if v, has := f["rotate"]; has {
			s.Rotate, _ = p.duration(v.v, what+": rotate")
		}
		if v, has := f["warn_before_expiry"]; has {
			s.WarnBeforeExpiry, _ = p.duration(v.v, what+": warn_before_expiry")
		}
		meta := tokenward.Secret{Owner: s.Owner, Description: s.Description, Tags: s.Tags}
		for i, t := range s.Tags {
			if t == "" || len(t) > tokenward.MaxTagLen {
				// Said here, at the tag: the domain's message quotes it,
				// and a token pasted into tags would reach the CI log.
				p.errorf(tagNodes[i], "%s: tags: a tag must be 1 to %d characters", what, tokenward.MaxTagLen)
				meta.Tags = nil
			}
		}
		if meta.Tags == nil && len(s.Tags) > tokenward.MaxTags {
			p.errorf(kv.k, "%s: more than %d tags", what, tokenward.MaxTags)
		}
		if err := tokenward.ValidateSecretMeta(&meta); err != nil {
			// The domain's limits (lengths, tag count); with the tags
			// checked above, its message names no value.
			p.errorf(kv.k, "%s: %s", what, tokenward.ErrorMessage(err))
		}
	}
	if !ok {
		return nil
	}
	if s.Environments == nil {
		s.Environments, s.AllEnvironments = m.EnvNames(), true
	}
	return s
}

// claimName is the form of a claim name: JWT claims in practice, of at
// most the server's length.
var claimName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^[A-Za-z_][A-Za-z0-9_.:-]{0,%d}$`, oidc.MaxClaimNameLen-1))
})

func (p *parser) pipeline(m *Manifest, kv pair) *Pipeline {
	what := "pipeline " + shortKey(kv.key)
	if oidc.ValidateBindingName(kv.key) != nil {
		p.errorf(kv.k, "pipelines: key is not a valid pipeline name (a lowercase DNS label: a-z, 0-9, inner '-')")
		return nil
	}
	pl := &Pipeline{Name: kv.key, Pos: pos(kv.k), TTL: DefaultTTL, Enabled: true}
	errsBefore := len(p.errs)
	f := p.fields(kv.v, what, "preset", "issuer", "audience", "claims", "grants", "ttl", "enabled")
	if deref(kv.v).Kind != yaml.MappingNode {
		return nil
	}
	if v, has := f["preset"]; has {
		if s, ok := p.str(v.v, what+": preset"); ok {
			if iss, known := Presets[s]; known {
				pl.Preset, pl.Issuer = s, iss
			} else {
				p.errorf(v.v, "%s: preset: unknown preset (want github or gitlab)", what)
			}
		}
	}
	if v, has := f["issuer"]; has {
		// An issuer with a preset is a self-hosted instance (GitLab on
		// gitlab.example.com): the preset still names the claims.
		if s, ok := p.str(v.v, what+": issuer"); ok {
			if len(s) > oidc.MaxIssuerLen {
				p.errorf(v.v, "%s: issuer: longer than %d characters", what, oidc.MaxIssuerLen)
			} else if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || oidc.ValidateIssuer(s) != nil {
				p.errorf(v.v, "%s: issuer: want an https URL with a host and no query (like %s)", what, IssuerGitHub)
			} else {
				pl.Issuer = s
			}
		}
	}
	if pl.Issuer == "" {
		if _, has := f["issuer"]; !has {
			if _, has := f["preset"]; !has {
				p.errorf(kv.k, "%s: give a preset (github, gitlab) or an issuer", what)
			}
		}
	}
	if v, has := f["audience"]; has {
		auds, nodes, ok := p.strs(v.v, what+": audience", true)
		if ok && len(auds) == 0 {
			p.errorf(deref(v.v), "%s: audience: an empty list (leave the key out for %s)", what, DefaultAudience)
		}
		if len(auds) > oidc.MaxAudiences {
			p.errorf(deref(v.v), "%s: audience: %d audiences (at most %d)", what, len(auds), oidc.MaxAudiences)
		}
		for i, a := range auds {
			switch {
			case a == "":
				p.errorf(nodes[i], "%s: audience: empty", what)
			case len(a) > oidc.MaxAudienceLen:
				p.errorf(nodes[i], "%s: audience: longer than %d characters", what, oidc.MaxAudienceLen)
			case !oidc.IsPrintable(a):
				p.errorf(nodes[i], "%s: audience: holds a character that is not printable", what)
			}
		}
		pl.Audiences = auds
	} else {
		pl.Audiences = []string{DefaultAudience}
	}
	if v, has := f["claims"]; has {
		cs := p.pairs(v.v, what+": claims")
		if len(cs) > oidc.MaxClaimConditions {
			p.errorf(deref(v.v), "%s: claims: %d claim conditions (at most %d)", what, len(cs), oidc.MaxClaimConditions)
		}
		for _, c := range cs {
			if !claimName().MatchString(c.key) {
				p.errorf(c.k, "%s: claims: not a claim name", what)
				continue
			}
			vals, nodes, ok := p.strs(c.v, what+": claims: "+c.key, true)
			if !ok {
				continue
			}
			if len(vals) == 0 {
				p.errorf(deref(c.v), "%s: claims: %s: an empty list matches nothing", what, c.key)
				continue
			}
			if len(vals) > oidc.MaxConditionValues {
				p.errorf(deref(c.v), "%s: claims: %s: %d values (at most %d values)", what, c.key, len(vals), oidc.MaxConditionValues)
				ok = false
			}
			for i, val := range vals {
				switch {
				case val == "" || strings.Trim(val, "*") == "":
					p.errorf(nodes[i], "%s: claims: %s: a value that is empty or only '*' would match any job", what, c.key)
					ok = false
				case len(val) > oidc.MaxPatternLen:
					p.errorf(nodes[i], "%s: claims: %s: a value longer than %d characters", what, c.key, oidc.MaxPatternLen)
					ok = false
				case !oidc.IsPrintable(val):
					p.errorf(nodes[i], "%s: claims: %s: a value holds a character that is not printable", what, c.key)
					ok = false
				}
			}
			if ok {
				pl.Claims = append(pl.Claims, Claim{Name: c.key, Values: vals, Pos: pos(c.k)})
			}
		}
	}
	if v, has := f["claims"]; !has {
		p.errorf(kv.k, "%s: declare at least one claim condition (with none, every repository on the issuer would be trusted)", what)
	} else if n := deref(v.v); n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		p.errorf(n, "%s: claims: declare at least one claim condition (with none, every repository on the issuer would be trusted)", what)
	}
	if v, has := f["grants"]; has {
		ss, nodes, _ := p.strs(v.v, what+": grants", false)
		if len(ss) > tokenward.MaxGrants {
			p.errorf(deref(v.v), "%s: grants: more than %d", what, tokenward.MaxGrants)
		}
		for i, s := range ss {
			g, err := tokenward.ParseGrant(s)
			if err != nil {
				// ParseGrant's message quotes the grant: a token pasted
				// here would reach the CI log.
				p.errorf(nodes[i], "%s: grants: not a grant (want action:project/env/name, like read:%s/prod/*, or gateway:ROUTE)", what, m.Project)
				continue
			}
			// A gateway grant names a route, not a project's secrets: whoever
			// applies the manifest must hold it (or admin:*/*/*) to put it in
			// a binding, as core checks for every grant of a binding.
			if g.Action == tokenward.ActionGateway {
				pl.Grants = append(pl.Grants, g)
				continue
			}
			// A repository's manifest speaks for its own project only.
			if g.Project != m.Project {
				p.errorf(nodes[i], "%s: grant %s is outside project %q", what, g, m.Project)
				continue
			}
			if g.Env != "*" && !m.HasEnv(g.Env) {
				p.errorf(nodes[i], "%s: grant %s: unknown environment %q", what, g, g.Env)
				continue
			}
			pl.Grants = append(pl.Grants, g)
		}
	}
	if v, has := f["grants"]; !has {
		p.errorf(kv.k, "%s: declare the grants the pipeline's token gets", what)
	} else if n := deref(v.v); n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		p.errorf(n, "%s: grants: an empty list", what)
	}
	if v, has := f["ttl"]; has {
		if d, ok := p.duration(v.v, what+": ttl"); ok {
			if d > MaxTTL {
				p.errorf(deref(v.v), "%s: ttl: longer than %s", what, FormatDuration(MaxTTL))
			}
			pl.TTL = d
		}
	}
	if v, has := f["enabled"]; has {
		pl.Enabled, _ = p.boolean(v.v, what+": enabled")
	}
	if len(p.errs) == errsBefore {
		p.serverBinding(kv.k, what, pl)
	}
	return pl
}

// serverBinding checks pl as the server will when apply creates it (at the
// most TTL a server may allow: its cap may be lower), so what the checks
// above missed is refused here, before apply creates anything, not half-way
// through. The server's message may quote a value: it is not repeated.
func (p *parser) serverBinding(at *yaml.Node, what string, pl *Pipeline) {
	b := &oidc.Binding{Name: pl.Name, Issuer: pl.Issuer, Audiences: pl.Audiences, Grants: pl.Grants, TTL: pl.TTL, Enabled: pl.Enabled}
	for _, c := range pl.Claims {
		// The condition apply sends: values only, the op left to the server.
		cond, err := oidc.ConditionFromValues(c.Name, c.Values)
		if err != nil {
			p.errAt(c.Pos.Line, c.Pos.Column, "%s: claims: %s: the server refuses this condition", what, c.Name)
			return
		}
		b.Claims = append(b.Claims, cond)
	}
	if err := b.ValidateMaxTTL(MaxTTL); err != nil {
		p.errorf(at, "%s: the server refuses this binding (issuer, audience, claims or grants)", what)
	}
}

// rotatorName is the form of a rotator's name (random, postgres, ...).
var rotatorName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`) })

func (p *parser) rotation(m *Manifest, kv pair) *RotationPolicy {
	what := "rotation " + shortKey(kv.key)
	sec := m.Secret(kv.key)
	if sec == nil {
		p.errorf(kv.k, "rotation: %q is not declared under secrets", shortKey(kv.key))
		return nil
	}
	r := &RotationPolicy{Secret: kv.key, Pos: pos(kv.k)}
	f := p.fields(kv.v, what, "every", "cron", "jitter", "grace", "rotator", "config")
	if deref(kv.v).Kind != yaml.MappingNode {
		return nil
	}
	if v, has := f["every"]; has {
		if d, ok := p.duration(v.v, what+": every"); ok {
			if sec.Rotate > 0 && d > sec.Rotate {
				p.errorf(deref(v.v), "%s: every: %s is longer than the secret's rotate: %s, so rotation would always be overdue", what, FormatDuration(d), FormatDuration(sec.Rotate))
			}
			r.Every = d
		}
	}
	if v, has := f["cron"]; has {
		if c, ok := p.str(v.v, what+": cron"); ok && c == "" {
			p.errorf(v.v, "%s: cron: empty", what)
		} else {
			r.Cron = c
		}
	}
	if v, has := f["jitter"]; has {
		r.Jitter, _ = p.duration(v.v, what+": jitter")
	}
	if v, has := f["grace"]; has {
		r.Grace, _ = p.duration(v.v, what+": grace")
	}
	_, hasEvery := f["every"]
	_, hasCron := f["cron"]
	if !hasEvery && !hasCron {
		p.errorf(kv.k, "%s: give every (like 30d) or cron", what)
	} else if err := p.schedule(f, r); err != nil {
		// The server's own schedule rules (rotate.ValidateSchedule): the
		// same limits, checked before apply creates anything.
		at := kv.k
		if v, has := f[err.Field]; has {
			at = deref(v.v)
		}
		p.errorf(at, "%s: %s", what, err.Msg)
	}
	if v, has := f["rotator"]; has {
		if s, ok := p.str(v.v, what+": rotator"); ok {
			if !rotatorName().MatchString(s) {
				p.errorf(v.v, "%s: rotator: not a rotator name (like random, tokenward, postgres, webhook, exec)", what)
			}
			r.Rotator = s
		}
	} else {
		p.errorf(kv.k, "%s: missing key \"rotator\"", what)
	}
	if v, has := f["config"]; has && !isNull(v.v) {
		r.Config = map[string]string{}
		for _, c := range p.pairs(v.v, what+": config") {
			if s, ok := p.str(c.v, what+": config: "+shortKey(c.key)); ok {
				r.Config[c.key] = s
			}
		}
	}
	return r
}

// schedule checks r's schedule by the server's rules once every field of it
// has been read; a field that could not be read was reported already.
func (p *parser) schedule(f map[string]pair, r *RotationPolicy) *rotate.ScheduleError {
	for key, val := range map[string]bool{"every": r.Every != 0, "cron": r.Cron != "", "jitter": r.Jitter != 0, "grace": r.Grace != 0} {
		if _, has := f[key]; has && !val {
			return nil
		}
	}
	var se *rotate.ScheduleError
	if err := rotate.ValidateSchedule(r.Every, r.Cron, r.Jitter, r.Grace); errors.As(err, &se) {
		return se
	} else if err != nil {
		return &rotate.ScheduleError{Field: "every", Msg: "the server refuses this schedule"}
	}
	return nil
}

// dynamic parses a dynamic source: its name is a secret name of its own
// (run --dynamic sets a variable of that name), admin_secret the NAME of a
// secret in the same environment.
func (p *parser) dynamic(m *Manifest, kv pair) *DynamicSource {
	what := "dynamic " + shortKey(kv.key)
	if tokenward.ValidateSecretName(kv.key) != nil {
		p.errorf(kv.k, "dynamic: key is not a valid name (an environment variable name: [A-Za-z_][A-Za-z0-9_]*)")
		return nil
	}
	if m.Secret(kv.key) != nil {
		p.errorf(kv.k, "%s: also declared under secrets; a dynamic source needs a name of its own", what)
		return nil
	}
	d := &DynamicSource{Name: kv.key, Pos: pos(kv.k), Config: map[string]string{}}
	f := p.fields(kv.v, what, "kind", "environments", "admin_secret", "group", "creation_sql", "revocation_sql", "url", "format", "ttl", "max_ttl", "max_leases", "skip_check")
	if deref(kv.v).Kind != yaml.MappingNode {
		return nil
	}
	ok := true
	if e, has := f["environments"]; has {
		d.Environments, ok = p.envList(m, e.v, what+": environments")
	}
	if v, has := f["kind"]; has {
		if s, good := p.str(v.v, what+": kind"); good {
			if s != "postgres" {
				// The kind is named only when it looks like one (mysql):
				// a token pasted here must not reach the CI log.
				if rotatorName().MatchString(s) {
					p.errorf(v.v, "%s: kind: %q is not supported (want postgres)", what, s)
				} else {
					p.errorf(v.v, "%s: kind: not a supported kind (want postgres)", what)
				}
			}
			d.Kind = s
		}
	} else {
		p.errorf(kv.k, "%s: missing key \"kind\"", what)
	}
	if v, has := f["admin_secret"]; has {
		if s, good := p.str(v.v, what+": admin_secret"); good {
			if tokenward.ValidateSecretName(s) != nil {
				p.errorf(v.v, "%s: admin_secret: want the NAME of a secret in the same environment", what)
			}
			d.AdminSecret = s
		}
	} else {
		p.errorf(kv.k, "%s: missing key \"admin_secret\"", what)
	}
	for _, k := range []string{"group", "creation_sql", "revocation_sql", "url", "format"} {
		if v, has := f[k]; has {
			if s, good := p.str(v.v, what+": "+k); good {
				d.Config[k] = s
			}
		}
	}
	if v, has := f["ttl"]; has {
		d.TTL, _ = p.duration(v.v, what+": ttl")
	} else {
		p.errorf(kv.k, "%s: missing key \"ttl\" (like 15m)", what)
	}
	if v, has := f["max_ttl"]; has {
		if d.MaxTTL, _ = p.duration(v.v, what+": max_ttl"); d.MaxTTL > 0 && d.MaxTTL < d.TTL {
			p.errorf(deref(v.v), "%s: max_ttl: shorter than ttl", what)
		} else if d.MaxTTL > tokenward.MaxLeaseTTL {
			p.errorf(deref(v.v), "%s: max_ttl: longer than %s", what, FormatDuration(tokenward.MaxLeaseTTL))
		}
	} else if v, has := f["ttl"]; has && d.TTL > tokenward.MaxLeaseTTL {
		// The server takes ttl for a missing max_ttl.
		p.errorf(deref(v.v), "%s: ttl: longer than %s (the longest max_ttl)", what, FormatDuration(tokenward.MaxLeaseTTL))
	}
	if v, has := f["skip_check"]; has {
		d.SkipCheck, _ = p.boolean(v.v, what+": skip_check")
	}
	if v, has := f["max_leases"]; has {
		n := deref(v.v)
		if i, err := strconv.Atoi(n.Value); n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || i < 0 {
			p.errorf(n, "%s: max_leases: want a whole number of 0 or more", what)
		} else if i > tokenward.MaxSourceLeases {
			p.errorf(n, "%s: max_leases: more than %d", what, tokenward.MaxSourceLeases)
		} else {
			d.MaxLeases = i
		}
	}
	if !ok {
		return nil
	}
	if d.Environments == nil {
		d.Environments = m.EnvNames()
	}
	return d
}
