package manifest

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tokenward/tokenward"
)

// State is what exists on the server, as plain data gathered by the caller.
type State struct {
	// Projects that exist, with their environments.
	Projects []tokenward.Project
	// Secrets whose metadata exists. Version 0 means metadata without a
	// value yet.
	Secrets []tokenward.Secret
	// Bindings are the names of the trust bindings that exist.
	Bindings []string
	// RotationPolicies are the paths (project/env/NAME) that have a policy.
	RotationPolicies []string
	// DynamicSources are the paths (project/env/name) of dynamic sources.
	DynamicSources []string
}

// ActionKind is what one step of a plan does.
type ActionKind string

// Kinds of plan actions, in the order a plan lists them.
const (
	CreateProject        ActionKind = "create-project"
	CreateEnvironment    ActionKind = "create-environment"
	CreateSecret         ActionKind = "create-secret"          // metadata only, never a value
	UpdateSecretMeta     ActionKind = "update-secret-metadata" // set fields differ; empty ones stay as they are
	NeedsValue           ActionKind = "needs-value"            // for a person or a rotator to set; apply does nothing
	CreateBinding        ActionKind = "create-binding"
	CreateRotationPolicy ActionKind = "create-rotation-policy"
	CreateDynamicSource  ActionKind = "create-dynamic-source"
)

// Action is one step of a plan. Only the fields its kind needs are set.
type Action struct {
	Kind    ActionKind `json:"kind"`
	Project string     `json:"project"`
	Env     string     `json:"environment,omitempty"`
	// Envs are a new project's environments (CreateProject).
	Envs []string `json:"environments,omitempty"`
	// Secret, Owner, Description and Tags describe a secret's metadata
	// (CreateSecret, UpdateSecretMeta, NeedsValue, CreateRotationPolicy).
	Secret      string   `json:"secret,omitempty"`
	Owner       string   `json:"owner,omitempty"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// Binding is the declared pipeline (CreateBinding).
	Binding *Pipeline `json:"-"`
	// Rotation is the declared policy (CreateRotationPolicy).
	Rotation *RotationPolicy `json:"-"`
	// Dynamic is the declared dynamic source (CreateDynamicSource).
	Dynamic *DynamicSource `json:"-"`
	// Pos is where the manifest declares what the action is for.
	Pos Pos `json:"pos"`
}

// Path returns project/env/secret for actions on a secret.
func (a Action) Path() string { return a.Project + "/" + a.Env + "/" + a.Secret }

// Plan is what apply would do, in order. It never deletes anything and
// never sets a value.
type Plan struct {
	File    string   `json:"file"`
	Project string   `json:"project"`
	Actions []Action `json:"actions"`
}

// Changes returns the actions apply carries out: all but NeedsValue.
func (p Plan) Changes() []Action {
	var out []Action
	for _, a := range p.Actions {
		if a.Kind != NeedsValue {
			out = append(out, a)
		}
	}
	return out
}

// NeedsValues returns the secrets that exist, or will, without a value.
func (p Plan) NeedsValues() []Action {
	var out []Action
	for _, a := range p.Actions {
		if a.Kind == NeedsValue {
			out = append(out, a)
		}
	}
	return out
}

// Plan compares the manifest with the server's state and lists what to
// create so the state has everything the manifest declares.
func (m *Manifest) Plan(state State) Plan {
	plan := Plan{File: m.File, Project: m.Project}
	add := func(a Action) { plan.Actions = append(plan.Actions, a) }

	var project *tokenward.Project
	for i := range state.Projects {
		if state.Projects[i].Name == m.Project {
			project = &state.Projects[i]
			break
		}
	}
	if project == nil {
		// CreateProject makes the project with its environments in one
		// step, as the store does.
		add(Action{Kind: CreateProject, Project: m.Project, Envs: m.EnvNames(), Pos: m.ProjectPos})
	} else {
		for _, e := range m.Environments {
			if !slices.Contains(project.Envs, e.Name) {
				add(Action{Kind: CreateEnvironment, Project: m.Project, Env: e.Name, Pos: e.Pos})
			}
		}
	}

	existing := map[string]*tokenward.Secret{}
	for i := range state.Secrets {
		s := &state.Secrets[i]
		existing[s.Path()] = s
	}
	for _, s := range m.Secrets {
		for _, env := range s.Environments {
			a := Action{Project: m.Project, Env: env, Secret: s.Name, Owner: s.Owner, Description: s.Description, Tags: s.Tags, Pos: s.Pos}
			have := existing[a.Path()]
			switch {
			case have == nil:
				a.Kind = CreateSecret
				add(a)
			default:
				// Only what the manifest sets is compared and carried: a
				// field it leaves out stays as the server has it, so apply
				// never clears metadata someone set by hand.
				u := a
				u.Kind, u.Owner, u.Description, u.Tags = UpdateSecretMeta, "", "", nil
				if s.Owner != "" && have.Owner != s.Owner {
					u.Owner = s.Owner
				}
				if s.Description != "" && have.Description != s.Description {
					u.Description = s.Description
				}
				if s.Tags != nil && !sameSet(have.Tags, s.Tags) {
					u.Tags = s.Tags
				}
				if u.Owner != "" || u.Description != "" || u.Tags != nil {
					add(u)
				}
			}
			if have == nil || have.Version == 0 {
				a.Kind = NeedsValue
				add(a)
			}
		}
	}

	for _, pl := range m.Pipelines {
		if !slices.Contains(state.Bindings, pl.Name) {
			add(Action{Kind: CreateBinding, Project: m.Project, Binding: pl, Pos: pl.Pos})
		}
	}
	for _, r := range m.Rotation {
		sec := m.Secret(r.Secret)
		for _, env := range sec.Environments {
			a := Action{Kind: CreateRotationPolicy, Project: m.Project, Env: env, Secret: r.Secret, Rotation: r, Pos: r.Pos}
			if !slices.Contains(state.RotationPolicies, a.Path()) {
				add(a)
			}
		}
	}
	for _, d := range m.Dynamic {
		for _, env := range d.Environments {
			a := Action{Kind: CreateDynamicSource, Project: m.Project, Env: env, Secret: d.Name, Dynamic: d, Pos: d.Pos}
			if !slices.Contains(state.DynamicSources, a.Path()) {
				add(a)
			}
		}
	}
	return plan
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// WriteText writes the plan for a person: one line per action, '+' for a
// creation, '~' for a metadata update and '!' for a secret that needs a
// value, then a summary.
func (p Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan for project %s (%s):\n", p.Project, p.File)
	if len(p.Actions) == 0 {
		b.WriteString("  nothing to do: the server has everything the manifest declares\n")
	}
	for _, a := range p.Actions {
		b.WriteString("  ")
		b.WriteString(a.text())
		b.WriteByte('\n')
	}
	changes, needs := len(p.Changes()), len(p.NeedsValues())
	fmt.Fprintf(&b, "%d to create or update, %d need a value; nothing is deleted.\n", changes, needs)
	_, err := io.WriteString(w, b.String())
	return err
}

func (a Action) text() string {
	line := fmt.Sprintf("(line %d)", a.Pos.Line)
	switch a.Kind {
	case CreateProject:
		return fmt.Sprintf("+ project %s with environments %s %s", a.Project, strings.Join(a.Envs, ", "), line)
	case CreateEnvironment:
		return fmt.Sprintf("+ environment %s/%s %s", a.Project, a.Env, line)
	case CreateSecret:
		return fmt.Sprintf("+ secret %s%s (metadata only) %s", a.Path(), metaText(a), line)
	case UpdateSecretMeta:
		return fmt.Sprintf("~ secret %s metadata:%s %s", a.Path(), metaText(a), line)
	case NeedsValue:
		return fmt.Sprintf("! secret %s needs a value (apply never invents one) %s", a.Path(), line)
	case CreateBinding:
		pl := a.Binding
		claims := make([]string, len(pl.Claims))
		for i, c := range pl.Claims {
			claims[i] = c.Name + "=" + strings.Join(c.Values, "|")
		}
		return fmt.Sprintf("+ binding %s: issuer %s, audience %s, claims %s, grants %s, ttl %s%s %s",
			pl.Name, pl.Issuer, strings.Join(pl.Audiences, ","), strings.Join(claims, " "),
			strings.Join(pl.Grants.Strings(), " "), FormatDuration(pl.TTL), disabledText(pl), line)
	case CreateRotationPolicy:
		r := a.Rotation
		var parts []string
		if r.Every > 0 {
			parts = append(parts, "every "+FormatDuration(r.Every))
		}
		if r.Cron != "" {
			parts = append(parts, "cron '"+r.Cron+"'")
		}
		if r.Jitter > 0 {
			parts = append(parts, "jitter "+FormatDuration(r.Jitter))
		}
		if r.Grace > 0 {
			parts = append(parts, "grace "+FormatDuration(r.Grace))
		}
		parts = append(parts, "rotator "+r.Rotator)
		if len(r.Config) > 0 {
			// Config keys only: values are the rotator's business and
			// should not be printed into CI logs.
			keys := make([]string, 0, len(r.Config))
			for k := range r.Config {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			parts = append(parts, "config "+strings.Join(keys, ","))
		}
		return fmt.Sprintf("+ rotation %s: %s %s", a.Path(), strings.Join(parts, ", "), line)
	case CreateDynamicSource:
		d := a.Dynamic
		parts := []string{d.Kind, "admin secret " + a.Project + "/" + a.Env + "/" + d.AdminSecret, "ttl " + FormatDuration(d.TTL)}
		if d.MaxTTL > 0 {
			parts = append(parts, "max ttl "+FormatDuration(d.MaxTTL))
		}
		if g := d.Config["group"]; g != "" {
			parts = append(parts, "group "+g)
		}
		if d.SkipCheck {
			parts = append(parts, "unchecked")
		}
		return fmt.Sprintf("+ dynamic %s: %s %s", a.Path(), strings.Join(parts, ", "), line)
	}
	return string(a.Kind)
}

func metaText(a Action) string {
	var parts []string
	if a.Owner != "" {
		parts = append(parts, "owner "+a.Owner)
	}
	if a.Description != "" {
		parts = append(parts, fmt.Sprintf("description %q", a.Description))
	}
	if len(a.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(a.Tags, ","))
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, ", ")
}

func disabledText(pl *Pipeline) string {
	if pl.Enabled {
		return ""
	}
	return " (disabled)"
}
