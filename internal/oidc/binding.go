// Package oidc trades a CI job's signed OIDC identity token for the grants of
// a trust binding: it verifies the token against its issuer's keys, matches
// its claims, and refuses replays.
package oidc

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenward/tokenward"
)

// DefaultMaxTTL caps a binding's TTL, and so the lifetime of every token
// minted through it, unless the server sets another cap (--oidc-max-ttl,
// at most MaxMaxTTL).
const DefaultMaxTTL = time.Hour

// MaxMaxTTL is the highest cap a server may set, and so the longest TTL a
// binding (or a manifest's pipeline) may ask for anywhere.
const MaxMaxTTL = 24 * time.Hour

// DefaultAudience is the audience CI jobs ask their issuer for when none is
// given (tokenward login --oidc --audience).
const DefaultAudience = "tokenward"

// Limits on a binding, so one stored binding stays small and a request that
// matches it stays cheap.
const (
	MaxAudiences          = 16
	MaxClaimConditions    = 32
	MaxConditionValues    = 32
	MaxPatternLen         = 512
	MaxClaimNameLen       = 64
	maxBindingNameLen     = 63
	MaxAudienceLen        = 512
	MaxIssuerLen          = 512
	maxClaimValueLen      = 4096
	conditionMetaGlob     = "*"
	conditionMetaOneOfSep = "|"
)

// Binding trusts the identity tokens of one issuer whose claims meet every
// condition, and gives them Grants for at most TTL.
type Binding struct {
	Name      string           `json:"name"`
	Issuer    string           `json:"issuer"`
	Audiences []string         `json:"audiences"`
	Claims    []ClaimCondition `json:"claims"`
	Grants    tokenward.Grants `json:"grants"`
	TTL       time.Duration    `json:"ttl"`
	Enabled   bool             `json:"enabled"`
	JWKSFile  string           `json:"jwks_file,omitempty"` // air-gapped: keys from this file, no discovery
	CreatedAt time.Time        `json:"created_at,omitzero"`
	UpdatedAt time.Time        `json:"updated_at,omitzero"`
	CreatedBy string           `json:"created_by,omitempty"` // id of the token that created it
}

// Validate checks b against DefaultMaxTTL; see ValidateMaxTTL.
func (b *Binding) Validate() error { return b.ValidateMaxTTL(DefaultMaxTTL) }

// ValidateMaxTTL checks every field of b. It refuses a binding without claim
// conditions, because it would trust every repository on the issuer, and a
// TTL above maxTTL. Errors are *tokenward.Error with EINVALID.
func (b *Binding) ValidateMaxTTL(maxTTL time.Duration) error {
	if err := ValidateBindingName(b.Name); err != nil {
		return err
	}
	if err := ValidateIssuer(b.Issuer); err != nil {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: %s", b.Name, tokenward.ErrorMessage(err))
	}
	if len(b.Audiences) == 0 {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: no audience (the usual one is %q)", b.Name, DefaultAudience)
	}
	if len(b.Audiences) > MaxAudiences {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: %d audiences (at most %d)", b.Name, len(b.Audiences), MaxAudiences)
	}
	for _, a := range b.Audiences {
		if a == "" || len(a) > MaxAudienceLen || !IsPrintable(a) {
			return tokenward.Errorf(tokenward.EINVALID, "binding %s: audience %q must be 1-%d printable characters", b.Name, tokenward.Printable(a), MaxAudienceLen)
		}
	}
	if len(b.Claims) == 0 {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: no claim conditions: it would trust every repository of %s (add e.g. --claim repository=owner/repo)", b.Name, b.Issuer)
	}
	if len(b.Claims) > MaxClaimConditions {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: %d claim conditions (at most %d)", b.Name, len(b.Claims), MaxClaimConditions)
	}
	for _, c := range b.Claims {
		if err := c.Validate(); err != nil {
			return tokenward.Errorf(tokenward.EINVALID, "binding %s: %s", b.Name, tokenward.ErrorMessage(err))
		}
	}
	if len(b.Grants) == 0 {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: no grants", b.Name)
	}
	// Grants may have been built in code rather than parsed: reparse their
	// string form so an invalid one cannot slip through.
	if _, err := tokenward.ParseGrants(b.Grants.Strings()); err != nil {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: %s", b.Name, tokenward.ErrorMessage(err))
	}
	if b.TTL <= 0 {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: TTL must be positive", b.Name)
	}
	if b.TTL > maxTTL {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: TTL %s is above the cap of %s", b.Name, b.TTL, maxTTL)
	}
	if b.JWKSFile != "" && strings.ContainsRune(b.JWKSFile, 0) {
		return tokenward.Errorf(tokenward.EINVALID, "binding %s: bad JWKS file name", b.Name)
	}
	return nil
}

// ValidateBindingName checks that s is a lowercase DNS label of 1-63
// characters (deploy-prod).
func ValidateBindingName(s string) error {
	if s == "" {
		return tokenward.Errorf(tokenward.EINVALID, "binding name is empty")
	}
	if len(s) > maxBindingNameLen {
		return tokenward.Errorf(tokenward.EINVALID, "binding name is longer than %d characters", maxBindingNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return tokenward.Errorf(tokenward.EINVALID, "binding name %q is not a lowercase DNS label (a-z, 0-9, inner '-')", tokenward.Printable(s))
		}
	}
	return nil
}

// ValidateIssuer checks an issuer URL: https, a host, no query or fragment.
// Plain http is allowed only on a loopback host, for tests and local fakes.
func ValidateIssuer(s string) error {
	if s == "" {
		return tokenward.Errorf(tokenward.EINVALID, "issuer is empty")
	}
	if len(s) > MaxIssuerLen {
		return tokenward.Errorf(tokenward.EINVALID, "issuer is longer than %d characters", MaxIssuerLen)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return tokenward.Errorf(tokenward.EINVALID, "issuer %q is not an https URL with a host and no query", tokenward.Printable(s))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return tokenward.Errorf(tokenward.EINVALID, "issuer %q must use https (plain http only on loopback)", tokenward.Printable(s))
		}
	default:
		return tokenward.Errorf(tokenward.EINVALID, "issuer %q must use https", tokenward.Printable(s))
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// MatchOp is how a claim condition compares.
type MatchOp string

const (
	// MatchExact: the claim equals the one value.
	MatchExact MatchOp = "exact"
	// MatchGlob: the claim matches the one pattern, in which '*' matches any
	// run of characters (refs/heads/release-*).
	MatchGlob MatchOp = "glob"
	// MatchOneOf: the claim matches one of the values; a value holding '*' is
	// a glob, any other is exact.
	MatchOneOf MatchOp = "one_of"
)

// ClaimCondition is one condition on one claim of an identity token. A
// condition on a claim the token lacks fails. Booleans and numbers are
// compared by their JSON text (GitLab's ref_protected "true").
type ClaimCondition struct {
	Claim  string   `json:"claim"`
	Op     MatchOp  `json:"op"`
	Values []string `json:"values"`
}

// ParseClaimCondition parses the CLI form of a condition:
//
//	key=value      exact match (no '*' and no '|' in value)
//	key=glob*      glob: '*' matches any run of characters, '/' included
//	key=a|b|c      one of a, b or c (each may itself be a glob)
//
// There is no escaping: to match a literal '*' or '|', declare the condition
// with op "exact" in the manifest or API.
func ParseClaimCondition(s string) (ClaimCondition, error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return ClaimCondition{}, tokenward.Errorf(tokenward.EINVALID, "claim condition %q: want key=value, key=glob* or key=a|b|c", tokenward.Printable(s))
	}
	var c ClaimCondition
	c.Claim = key
	switch {
	case strings.Contains(value, conditionMetaOneOfSep):
		c.Op = MatchOneOf
		c.Values = strings.Split(value, conditionMetaOneOfSep)
	case strings.Contains(value, conditionMetaGlob):
		c.Op = MatchGlob
		c.Values = []string{value}
	default:
		c.Op = MatchExact
		c.Values = []string{value}
	}
	if err := c.Validate(); err != nil {
		return ClaimCondition{}, err
	}
	return c, nil
}

// ConditionFromValues builds the condition "claim matches one of values",
// each value exact or, holding '*', a glob: the form of the manifest's
// pipelines.<name>.claims. One value gives an exact or glob condition.
func ConditionFromValues(claim string, values []string) (ClaimCondition, error) {
	c := ClaimCondition{Claim: claim, Op: MatchOneOf, Values: slices.Clone(values)}
	if len(values) == 1 {
		c.Op = MatchExact
		if strings.Contains(values[0], conditionMetaGlob) {
			c.Op = MatchGlob
		}
	}
	if err := c.Validate(); err != nil {
		return ClaimCondition{}, err
	}
	return c, nil
}

// ParseClaimConditions parses each string with ParseClaimCondition.
func ParseClaimConditions(ss []string) ([]ClaimCondition, error) {
	if len(ss) > MaxClaimConditions {
		return nil, tokenward.Errorf(tokenward.EINVALID, "%d claim conditions (at most %d)", len(ss), MaxClaimConditions)
	}
	out := make([]ClaimCondition, 0, len(ss))
	for _, s := range ss {
		c, err := ParseClaimCondition(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// String returns the CLI form of c; ParseClaimCondition reads it back to c
// for every condition it can express.
func (c ClaimCondition) String() string {
	return c.Claim + "=" + strings.Join(c.Values, conditionMetaOneOfSep)
}

// Validate checks the claim name, the op and its values. A pattern that
// matches every value ("*") is refused: it is no condition at all.
func (c ClaimCondition) Validate() error {
	if err := validateClaimName(c.Claim); err != nil {
		return err
	}
	switch c.Op {
	case MatchExact, MatchGlob:
		if len(c.Values) != 1 {
			return tokenward.Errorf(tokenward.EINVALID, "claim %s: %s takes exactly one value", c.Claim, c.Op)
		}
	case MatchOneOf:
		if len(c.Values) < 1 || len(c.Values) > MaxConditionValues {
			return tokenward.Errorf(tokenward.EINVALID, "claim %s: one_of takes 1-%d values", c.Claim, MaxConditionValues)
		}
	default:
		return tokenward.Errorf(tokenward.EINVALID, "claim %s: unknown match %q (want exact, glob or one_of)", c.Claim, tokenward.Printable(string(c.Op)))
	}
	for _, v := range c.Values {
		if v == "" {
			return tokenward.Errorf(tokenward.EINVALID, "claim %s: empty value", c.Claim)
		}
		if len(v) > MaxPatternLen {
			return tokenward.Errorf(tokenward.EINVALID, "claim %s: value longer than %d characters", c.Claim, MaxPatternLen)
		}
		if !IsPrintable(v) {
			return tokenward.Errorf(tokenward.EINVALID, "claim %s: value %q has a non-printable character", c.Claim, tokenward.Printable(v))
		}
		if c.Op == MatchExact {
			continue
		}
		if strings.Trim(v, conditionMetaGlob) == "" {
			return tokenward.Errorf(tokenward.EINVALID, "claim %s: pattern %q matches every value; drop the condition or narrow it", c.Claim, tokenward.Printable(v))
		}
		if c.Op == MatchGlob && !strings.Contains(v, conditionMetaGlob) {
			return tokenward.Errorf(tokenward.EINVALID, "claim %s: glob %q has no '*'; use exact", c.Claim, tokenward.Printable(v))
		}
	}
	return nil
}

func validateClaimName(s string) error {
	if s == "" {
		return tokenward.Errorf(tokenward.EINVALID, "claim name is empty")
	}
	if len(s) > MaxClaimNameLen {
		return tokenward.Errorf(tokenward.EINVALID, "claim name is longer than %d characters", MaxClaimNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return tokenward.Errorf(tokenward.EINVALID, "claim name %q has a character outside [A-Za-z0-9_.:-]", tokenward.Printable(s))
		}
	}
	return nil
}

// Match reports whether the claim value v (already in string form) meets c.
func (c ClaimCondition) Match(v string) bool {
	switch c.Op {
	case MatchExact:
		return len(c.Values) == 1 && v == c.Values[0]
	case MatchGlob:
		return len(c.Values) == 1 && tokenward.GlobMatch(c.Values[0], v)
	case MatchOneOf:
		for _, p := range c.Values {
			if strings.Contains(p, conditionMetaGlob) {
				if tokenward.GlobMatch(p, v) {
					return true
				}
			} else if v == p {
				return true
			}
		}
	}
	return false
}

// Preset describes a well-known CI issuer: its URL and the claims its
// identity tokens carry.
type Preset struct {
	Name   string
	Issuer string
	// Claims lists the claims the issuer puts in its tokens. A condition on
	// another claim is allowed (issuers add claims) but draws a warning.
	Claims []string
	// ArrayClaims are the claims of Claims whose value is an array: a
	// condition matches string claims only, so one on these never holds
	// and draws a warning too.
	ArrayClaims []string
}

// registeredClaims appear in every identity token.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// Presets are the CI issuers tokenward knows by name.
var Presets = map[string]Preset{
	"github": {
		Name:   "github",
		Issuer: "https://token.actions.githubusercontent.com",
		Claims: []string{
			"repository", "repository_owner", "ref", "ref_type", "environment",
			"workflow_ref", "job_workflow_ref", "run_id", "actor", "sha",
			"repository_id", "repository_owner_id", "repository_visibility", "actor_id",
			"workflow", "workflow_sha", "job_workflow_sha", "event_name", "head_ref",
			"base_ref", "run_number", "run_attempt", "runner_environment", "ref_protected",
			"enterprise", "enterprise_id", "environment_node_id",
		},
	},
	"gitlab": {
		Name:   "gitlab",
		Issuer: "https://gitlab.com",
		Claims: []string{
			"project_path", "namespace_path", "ref", "ref_type", "ref_protected",
			"environment", "pipeline_id", "pipeline_source", "user_login", "job_id", "sha",
			"project_id", "namespace_id", "user_id", "user_email", "ref_path",
			"environment_protected", "deployment_tier", "deployment_action",
			"ci_config_ref_uri", "ci_config_sha", "runner_id", "runner_environment",
			"project_visibility", "user_access_level", "groups_direct",
		},
		ArrayClaims: []string{"groups_direct"},
	},
}

// ApplyPreset fills b's issuer from the named preset when b has none. It
// refuses an unknown preset and an issuer that differs from the preset's.
func (b *Binding) ApplyPreset(name string) error {
	p, ok := Presets[name]
	if !ok {
		names := make([]string, 0, len(Presets))
		for n := range Presets {
			names = append(names, n)
		}
		slices.Sort(names)
		return tokenward.Errorf(tokenward.EINVALID, "unknown preset %q (want %s)", tokenward.Printable(name), strings.Join(names, " or "))
	}
	if b.Issuer == "" {
		b.Issuer = p.Issuer
	} else if b.Issuer != p.Issuer {
		return tokenward.Errorf(tokenward.EINVALID, "preset %s has issuer %s, not %s", p.Name, p.Issuer, tokenward.Printable(b.Issuer))
	}
	return nil
}

// Warnings returns advice about b that is not an error: a condition on a
// claim that the preset issuer of b is not known to issue (a typo would make
// the binding never match).
func (b *Binding) Warnings() []string {
	var p *Preset
	for _, candidate := range Presets {
		if candidate.Issuer == b.Issuer {
			p = &candidate
			break
		}
	}
	if p == nil {
		return nil
	}
	var out []string
	for _, c := range b.Claims {
		switch {
		case slices.Contains(p.ArrayClaims, c.Claim):
			out = append(out, fmt.Sprintf("claim %q is an array in %s's tokens: a condition matches string claims only, so this one never holds", tokenward.Printable(c.Claim), p.Name))
		case !slices.Contains(p.Claims, c.Claim) && !slices.Contains(registeredClaims, c.Claim):
			out = append(out, fmt.Sprintf("claim %q is not one %s issues (known: %s)", tokenward.Printable(c.Claim), p.Name, strings.Join(p.Claims[:10], ", ")+", ..."))
		}
	}
	return out
}

// IsPrintable reports whether s is valid UTF-8 without control characters.
func IsPrintable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
