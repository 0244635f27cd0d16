// Package manifest reads tokenward.yaml, the file in which a repository
// declares the secrets, trust bindings and rotation policies it needs, and
// compares it with the server's state (Plan) and facts (Check).
package manifest

import (
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
)

// DefaultFile is the manifest's conventional name at a repository's root.
const DefaultFile = "tokenward.yaml"

// MaxSize bounds a manifest file: a repository's needs fit in far less, and
// the bound keeps a hostile file from costing memory.
const MaxSize = 1 << 20

// DefaultWarnBeforeExpiry is the warning window for a secret's upstream
// expiry when the manifest does not set warn_before_expiry.
const DefaultWarnBeforeExpiry = 14 * Day

// DefaultAudience is a pipeline's audience when the manifest gives none; it
// matches the default of `tokenward login --oidc`.
const DefaultAudience = "tokenward"

// DefaultTTL is a pipeline token's lifetime when the manifest gives none,
// and MaxTTL the most it may ask for (the server may cap it lower).
const (
	DefaultTTL = 15 * time.Minute
	MaxTTL     = oidc.MaxMaxTTL
)

// Issuers of the pipeline presets.
const (
	IssuerGitHub = "https://token.actions.githubusercontent.com"
	IssuerGitLab = "https://gitlab.com"
)

// Presets maps a pipeline preset to the issuer it fills in.
var Presets = map[string]string{
	"github": IssuerGitHub,
	"gitlab": IssuerGitLab,
}

// Pos is a place in the manifest, 1-based as editors count.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// Manifest is a parsed and validated tokenward.yaml. Every slice keeps the
// order of the file, so plans and reports are stable.
type Manifest struct {
	File         string
	Project      string
	ProjectPos   Pos
	Environments []Env
	Secrets      []*Secret
	Pipelines    []*Pipeline
	Rotation     []*RotationPolicy
	Dynamic      []*DynamicSource
}

// Env is a declared environment.
type Env struct {
	Name string
	Pos  Pos
}

// Secret is a declared secret.
type Secret struct {
	Name string
	Pos  Pos
	// Environments are the environments the secret is needed in, in the
	// manifest's order: those it lists, or every environment when it lists
	// none (AllEnvironments).
	Environments    []string
	AllEnvironments bool
	Owner           string
	Description     string
	Tags            []string
	// Rotate is the longest a value may live before rotation is overdue;
	// zero means no limit.
	Rotate time.Duration
	// WarnBeforeExpiry is the warning window before the upstream expiry;
	// zero means DefaultWarnBeforeExpiry.
	WarnBeforeExpiry time.Duration
}

// Warn returns the secret's expiry warning window.
func (s *Secret) Warn() time.Duration {
	if s.WarnBeforeExpiry > 0 {
		return s.WarnBeforeExpiry
	}
	return DefaultWarnBeforeExpiry
}

// Pipeline is a declared OIDC trust binding: CI jobs whose identity token
// matches it may exchange it for a short-lived token with its grants.
type Pipeline struct {
	Name string
	Pos  Pos
	// Preset is "github", "gitlab" or "". Issuer is the issuer URL: the one
	// given, else the preset's.
	Preset    string
	Issuer    string
	Audiences []string
	// Claims are the conditions a token must meet, all of them; never empty.
	Claims  []Claim
	Grants  tokenward.Grants
	TTL     time.Duration
	Enabled bool
}

// Claim is one claim condition: the claim's value must match one of Values,
// each an exact value or a glob in which '*' matches any run of characters.
type Claim struct {
	Name   string
	Values []string
	Pos    Pos
}

// RotationPolicy is a declared rotation policy for a secret, in every
// environment the secret is declared in.
type RotationPolicy struct {
	Secret  string
	Pos     Pos
	Every   time.Duration
	Cron    string
	Jitter  time.Duration
	Grace   time.Duration
	Rotator string
	// Config is the rotator's configuration. It should name secrets by path
	// (dsn_secret: payments/prod/DB_ADMIN_URL), never hold one.
	Config map[string]string
}

// DynamicSource is a declared dynamic source (docs/dynamic.md), in each
// of its environments: every read makes a credential with a lease.
type DynamicSource struct {
	Name         string
	Pos          Pos
	Environments []string
	Kind         string
	// AdminSecret is the NAME of the secret, in each environment, that
	// holds the admin connection URL.
	AdminSecret string
	// Config is the rest of the kind's settings (group, creation_sql,
	// revocation_sql, url, format); never a credential.
	Config      map[string]string
	TTL, MaxTTL time.Duration
	MaxLeases   int
	// SkipCheck creates the source without checking it against its
	// database (skip_check: true), for a database the server cannot reach
	// yet, or an admin secret the same apply has yet to see set.
	SkipCheck bool
}

// HasEnv reports whether env is declared.
func (m *Manifest) HasEnv(env string) bool {
	for _, e := range m.Environments {
		if e.Name == env {
			return true
		}
	}
	return false
}

// EnvNames returns the declared environments' names in order.
func (m *Manifest) EnvNames() []string {
	out := make([]string, len(m.Environments))
	for i, e := range m.Environments {
		out[i] = e.Name
	}
	return out
}

// envList lists the declared environments for a message.
func (m *Manifest) envList() string {
	if len(m.Environments) == 0 {
		return "none"
	}
	return strings.Join(m.EnvNames(), ", ")
}

// Secret returns the declared secret name, or nil.
func (m *Manifest) Secret(name string) *Secret {
	for _, s := range m.Secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// SecretsIn returns the secrets declared for env, in file order.
func (m *Manifest) SecretsIn(env string) []*Secret {
	var out []*Secret
	for _, s := range m.Secrets {
		for _, e := range s.Environments {
			if e == env {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// ImpliedGrants returns the grants a pipeline needs to read what the
// manifest declares in env ("" for every environment): read on each
// declared secret there, and nothing else.
func (m *Manifest) ImpliedGrants(env string) tokenward.Grants {
	var gs tokenward.Grants
	for _, e := range m.Environments {
		if env != "" && e.Name != env {
			continue
		}
		for _, s := range m.SecretsIn(e.Name) {
			gs = append(gs, tokenward.Grant{Action: tokenward.ActionRead, Project: m.Project, Env: e.Name, Name: s.Name})
		}
	}
	return gs
}
