package manifest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
)

// Facts is what the server says about the project, as plain data gathered
// by the caller. It holds no secret value.
type Facts struct {
	// Secrets that exist, with their upstream expiry (ExpiresAt) and last
	// rotation or update (UpdatedAt). Version 0 means metadata without a
	// value. Secrets of other projects are ignored.
	Secrets []tokenward.Secret
	// DuplicateGroups are groups of paths (project/env/NAME) whose current
	// values are the same, as the server finds by comparing keyed
	// fingerprints.
	DuplicateGroups [][]string
	// TokenGrants are the grants of the token running the check.
	TokenGrants tokenward.Grants
}

// Class is the kind of a finding.
type Class string

// Finding classes.
const (
	ClassMissing         Class = "missing"             // no such secret, or no value
	ClassExpired         Class = "expired"             // upstream expiry has passed
	ClassExpiring        Class = "expiring"            // upstream expiry inside the warning window
	ClassRotationOverdue Class = "rotation-overdue"    // older than the declared rotate interval
	ClassDuplicateValue  Class = "duplicate-value"     // same value as in another environment
	ClassExcessGrant     Class = "excess-grant"        // the token may do more than the manifest needs
	ClassUnknownEnv      Class = "unknown-environment" // --env names no declared environment
)

// Severity says whether a finding fails the check.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// severities fixes each class's severity, so the documented table in
// docs/manifest.md stays the truth.
var severities = map[Class]Severity{
	ClassMissing:         SeverityError,
	ClassExpired:         SeverityError,
	ClassExpiring:        SeverityWarning,
	ClassRotationOverdue: SeverityError,
	ClassDuplicateValue:  SeverityError,
	ClassExcessGrant:     SeverityWarning,
	ClassUnknownEnv:      SeverityError,
}

// Exit codes of `tokenward check`, documented in docs/manifest.md.
const (
	ExitOK       = 0 // no errors (and, with --strict, no warnings)
	ExitErrors   = 1 // at least one error finding
	ExitUsage    = 2 // bad flags, unreadable or invalid manifest, unknown --env
	ExitWarnings = 3 // warnings only, with --strict
)

// Finding is one problem the check found.
type Finding struct {
	// Secret and Env name the secret checked; both are empty for findings
	// about the token.
	Secret   string   `json:"secret,omitempty"`
	Env      string   `json:"environment,omitempty"`
	Class    Class    `json:"class"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Line is the manifest line that declares what the finding is about.
	Line int `json:"line,omitempty"`
}

// Target is one secret×environment the check looked at.
type Target struct {
	Secret string `json:"secret"`
	Env    string `json:"environment"`
	Line   int    `json:"line"`
}

// Report is the result of a check.
type Report struct {
	File         string    `json:"file"`
	Project      string    `json:"project"`
	Environments []string  `json:"environments"`
	CheckedAt    time.Time `json:"checked_at"`
	Targets      []Target  `json:"-"`
	Findings     []Finding `json:"findings"`
}

// Errors counts error findings.
func (r Report) Errors() int { return r.count(SeverityError) }

// Warnings counts warning findings.
func (r Report) Warnings() int { return r.count(SeverityWarning) }

func (r Report) count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// ExitCode returns the process exit code for the report; strict makes
// warnings fail too.
func (r Report) ExitCode(strict bool) int {
	for _, f := range r.Findings {
		if f.Class == ClassUnknownEnv {
			return ExitUsage
		}
	}
	switch {
	case r.Errors() > 0:
		return ExitErrors
	case strict && r.Warnings() > 0:
		return ExitWarnings
	}
	return ExitOK
}

// Check compares what the manifest declares for env ("" for every declared
// environment) with the facts, at now.
func Check(m *Manifest, env string, facts Facts, now time.Time) Report {
	r := Report{File: m.File, Project: m.Project, CheckedAt: now.UTC(), Findings: []Finding{}}
	add := func(f Finding) {
		f.Severity = severities[f.Class]
		r.Findings = append(r.Findings, f)
	}
	if env != "" && !m.HasEnv(env) {
		r.Environments = []string{env}
		add(Finding{Env: env, Class: ClassUnknownEnv, Line: m.ProjectPos.Line,
			Message: fmt.Sprintf("environment %q is not declared in %s (declared: %s)", shortKey(env), m.File, m.envList())})
		return r
	}
	for _, e := range m.Environments {
		if env == "" || e.Name == env {
			r.Environments = append(r.Environments, e.Name)
		}
	}

	have := map[string]*tokenward.Secret{}
	for i := range facts.Secrets {
		if s := &facts.Secrets[i]; s.Project == m.Project {
			have[s.Path()] = s
		}
	}
	dups := duplicates(facts.DuplicateGroups)

	for _, e := range r.Environments {
		for _, s := range m.SecretsIn(e) {
			r.Targets = append(r.Targets, Target{Secret: s.Name, Env: e, Line: s.Pos.Line})
			path := m.Project + "/" + e + "/" + s.Name
			base := Finding{Secret: s.Name, Env: e, Line: s.Pos.Line}
			got := have[path]
			if got == nil || got.Version == 0 {
				f := base
				f.Class = ClassMissing
				if got == nil {
					f.Message = fmt.Sprintf("%s is declared at %s:%d but does not exist on the server", path, m.File, s.Pos.Line)
				} else {
					f.Message = fmt.Sprintf("%s exists but has no value yet", path)
				}
				add(f)
				continue
			}
			if !got.ExpiresAt.IsZero() {
				f := base
				switch left := got.ExpiresAt.Sub(now); {
				case left <= 0:
					f.Class = ClassExpired
					f.Message = fmt.Sprintf("%s: the upstream credential expired at %s, %s ago", path, stamp(got.ExpiresAt), human(-left))
					add(f)
				case left <= s.Warn():
					f.Class = ClassExpiring
					f.Message = fmt.Sprintf("%s: the upstream credential expires at %s, in %s (warning window %s)", path, stamp(got.ExpiresAt), human(left), FormatDuration(s.Warn()))
					add(f)
				}
			}
			if s.Rotate > 0 {
				last := got.UpdatedAt
				if last.IsZero() {
					last = got.CreatedAt
				}
				if age := now.Sub(last); !last.IsZero() && age > s.Rotate {
					f := base
					f.Class = ClassRotationOverdue
					f.Message = fmt.Sprintf("%s: last rotated or updated at %s, %s ago; rotate: %s makes it overdue by %s", path, stamp(last), human(age), FormatDuration(s.Rotate), human(age-s.Rotate))
					add(f)
				}
			}
			if others := dups[path]; len(others) > 0 {
				f := base
				f.Class = ClassDuplicateValue
				f.Message = fmt.Sprintf("%s has the same value as %s; each environment needs its own credential", path, strings.Join(others, ", "))
				add(f)
			}
		}
	}

	// Least privilege: every grant of the token should be needed to read
	// what the manifest declares here.
	need := m.ImpliedGrants(env)
	exact := make(map[tokenward.Grant]bool, len(need))
	for _, g := range need {
		exact[g] = true
	}
	for _, g := range facts.TokenGrants {
		// The map answers the common case (a token minted from the
		// manifest) without a quadratic scan; Covers decides the rest.
		if exact[g] || need.Covers(tokenward.Grants{g}) {
			continue
		}
		add(Finding{Class: ClassExcessGrant, Line: m.ProjectPos.Line,
			Message: fmt.Sprintf("the token's grant %s is more than the manifest needs%s (it needs only %s)", g, scopeText(env), listGrants(need))})
	}
	return r
}

// duplicates maps each path to the other paths sharing its value in another
// environment or project. Two secrets of one environment sharing a value is
// not this check's business.
func duplicates(groups [][]string) map[string][]string {
	out := map[string][]string{}
	for _, g := range groups {
		for _, p := range g {
			proj, env, _ := splitPath(p)
			for _, q := range g {
				qproj, qenv, _ := splitPath(q)
				if q != p && (qproj != proj || qenv != env) && !slices.Contains(out[p], q) {
					out[p] = append(out[p], q)
				}
			}
		}
	}
	for p := range out {
		slices.Sort(out[p])
	}
	return out
}

func splitPath(p string) (project, env, name string) {
	project, rest, _ := strings.Cut(p, "/")
	env, name, _ = strings.Cut(rest, "/")
	return project, env, name
}

func scopeText(env string) string {
	if env == "" {
		return ""
	}
	return " in " + env
}

// listGrants lists a few grants; a long list would drown the message.
func listGrants(gs tokenward.Grants) string {
	const max = 5
	if len(gs) == 0 {
		return "none"
	}
	ss := gs.Strings()
	if len(ss) > max {
		return strings.Join(ss[:max], ", ") + fmt.Sprintf(" and %d more", len(ss)-max)
	}
	return strings.Join(ss, ", ")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// human rounds a duration for a message: to the hour beyond a day, to the
// minute beyond an hour.
func human(d time.Duration) string {
	switch {
	case d >= Day:
		d = d.Truncate(time.Hour)
	case d >= time.Hour:
		d = d.Truncate(time.Minute)
	}
	return FormatDuration(d)
}
