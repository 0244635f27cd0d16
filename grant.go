package tokenward

import (
	"encoding/json"
	"strings"
)

// Action is what a grant allows.
type Action string

const (
	ActionRead   Action = "read"
	ActionWrite  Action = "write"
	ActionRotate Action = "rotate"
	ActionRevoke Action = "revoke"
	ActionAudit  Action = "audit"
	// ActionAdmin allows every other action on the resources it covers, and
	// managing projects, environments and keys.
	ActionAdmin Action = "admin"
)

// Actions lists every action.
var Actions = []Action{ActionRead, ActionWrite, ActionRotate, ActionRevoke, ActionAudit, ActionAdmin}

func (a Action) valid() bool {
	for _, b := range Actions {
		if a == b {
			return true
		}
	}
	return false
}

// MaxGrants bounds the grants of one token.
const MaxGrants = 64

// Grant allows one action on the secrets matched by project/env/name. A
// segment is "*" (any), a literal name, or, for the name, a glob in which
// "*" matches any run of characters (STRIPE_*). A gateway grant
// ("gateway:<route>") has Action ActionGateway, the route glob in Name and
// Project and Env empty.
type Grant struct {
	Action  Action
	Project string
	Env     string
	Name    string
}

// ParseGrant parses "action:project/env/name", or "gateway:<route>".
func ParseGrant(s string) (Grant, error) {
	action, res, ok := strings.Cut(s, ":")
	if !ok {
		return Grant{}, Errorf(EINVALID, "grant %q: want action:project/env/name", Printable(s))
	}
	if Action(action) == ActionGateway {
		return parseGatewayGrant(s, res)
	}
	g := Grant{Action: Action(action)}
	if !g.Action.valid() {
		return Grant{}, Errorf(EINVALID, "grant %q: unknown action %q (want read, write, rotate, revoke, audit, admin or gateway)", Printable(s), Printable(action))
	}
	parts := strings.Split(res, "/")
	if len(parts) != 3 {
		return Grant{}, Errorf(EINVALID, "grant %q: want three segments project/env/name", Printable(s))
	}
	g.Project, g.Env, g.Name = parts[0], parts[1], parts[2]
	if g.Project != "*" {
		if err := ValidateProjectName(g.Project); err != nil {
			return Grant{}, Errorf(EINVALID, "grant %q: %s", Printable(s), ErrorMessage(err))
		}
	}
	if g.Env != "*" {
		if err := ValidateEnvName(g.Env); err != nil {
			return Grant{}, Errorf(EINVALID, "grant %q: %s", Printable(s), ErrorMessage(err))
		}
	}
	if g.Name != "*" {
		// A name glob is a secret name in which '*' may stand anywhere.
		lit := strings.ReplaceAll(g.Name, "*", "")
		if lit == "" || strings.Contains(g.Name, "**") {
			return Grant{}, Errorf(EINVALID, "grant %q: bad name glob", Printable(s))
		}
		probe := strings.ReplaceAll(g.Name, "*", "A")
		if err := ValidateSecretName(probe); err != nil {
			return Grant{}, Errorf(EINVALID, "grant %q: name pattern %q is not a secret name or glob", Printable(s), Printable(g.Name))
		}
	}
	return g, nil
}

// MustParseGrant is ParseGrant for constants; it panics on error.
func MustParseGrant(s string) Grant {
	g, err := ParseGrant(s)
	if err != nil {
		panic(err)
	}
	return g
}

func (g Grant) String() string {
	if g.Action == ActionGateway {
		return string(ActionGateway) + ":" + g.Name
	}
	return string(g.Action) + ":" + g.Project + "/" + g.Env + "/" + g.Name
}

// MarshalJSON writes a grant as its string form.
func (g Grant) MarshalJSON() ([]byte, error) { return json.Marshal(g.String()) }

// UnmarshalJSON parses a grant from its string form.
func (g *Grant) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return Errorf(EINVALID, "grant must be a string")
	}
	p, err := ParseGrant(s)
	if err != nil {
		return err
	}
	*g = p
	return nil
}

// Covers reports whether every request o allows is also allowed by g. The
// resource of o may itself hold globs: the check is conservative and only
// says true when coverage is certain.
func (g Grant) Covers(o Grant) bool {
	if g.Action == ActionGateway || o.Action == ActionGateway {
		// A gateway grant's resource is a route alone: one naming a
		// project or environment is no gateway grant.
		if o.Action != ActionGateway || o.Project != "" || o.Env != "" {
			return false
		}
		if g.Action == ActionAdmin {
			return g.Project == "*" && g.Env == "*" && g.Name == "*"
		}
		return g.Action == ActionGateway && GlobMatch(g.Name, o.Name)
	}
	if g.Action != o.Action && g.Action != ActionAdmin {
		return false
	}
	return GlobMatch(g.Project, o.Project) && GlobMatch(g.Env, o.Env) && GlobMatch(g.Name, o.Name)
}

// AllowsRoute reports whether g allows calls through gateway route.
func (g Grant) AllowsRoute(route string) bool {
	return g.Covers(Grant{Action: ActionGateway, Name: route})
}

// Allows reports whether g allows action on the secret project/env/name.
func (g Grant) Allows(action Action, project, env, name string) bool {
	return g.Covers(Grant{Action: action, Project: project, Env: env, Name: name})
}

// GlobMatch matches pattern, in which '*' matches any run of characters,
// against s, in which '*' is an ordinary character. Because a pattern '*'
// also matches a literal '*' of s, GlobMatch(p, q) for two globs means every
// name q matches is matched by p.
func GlobMatch(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			starPx, starSx = px, sx
			px++
		case px < len(pattern) && pattern[px] == s[sx]:
			px++
			sx++
		case starPx >= 0:
			starSx++
			px, sx = starPx+1, starSx
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// Grants is a token's set of grants.
type Grants []Grant

// ParseGrants parses each string as a grant.
func ParseGrants(ss []string) (Grants, error) {
	if len(ss) > MaxGrants {
		return nil, Errorf(EINVALID, "too many grants: %d (at most %d)", len(ss), MaxGrants)
	}
	gs := make(Grants, 0, len(ss))
	for _, s := range ss {
		g, err := ParseGrant(s)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// Allows reports whether any grant allows action on project/env/name.
func (gs Grants) Allows(action Action, project, env, name string) bool {
	for _, g := range gs {
		if g.Allows(action, project, env, name) {
			return true
		}
	}
	return false
}

// AllowsEveryName reports whether gs allow action on every secret of
// project/env, whatever its name, so a listing there needs no check per
// name (an environment fetch checked each of its secrets twice). It is
// Allows of the name "*": GlobMatch matches a literal "*" only with a
// pattern of stars alone, which matches every name.
func (gs Grants) AllowsEveryName(action Action, project, env string) bool {
	return gs.Allows(action, project, env, "*")
}

// AllowsRoute reports whether any grant allows calls through gateway
// route.
func (gs Grants) AllowsRoute(route string) bool {
	for _, g := range gs {
		if g.AllowsRoute(route) {
			return true
		}
	}
	return false
}

// Covers reports whether every grant of o is covered by some grant of gs.
func (gs Grants) Covers(o Grants) bool {
	for _, og := range o {
		covered := false
		for _, g := range gs {
			if g.Covers(og) {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// AllowsAnyIn reports whether some grant allows action on at least one
// possible secret of project/env (used to filter listings).
func (gs Grants) AllowsAnyIn(action Action, project, env string) bool {
	for _, g := range gs {
		if (g.Action == action || g.Action == ActionAdmin) && GlobMatch(g.Project, project) && GlobMatch(g.Env, env) {
			return true
		}
	}
	return false
}

// Strings returns the string form of each grant.
func (gs Grants) Strings() []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.String()
	}
	return out
}
