package manifest

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

// summary writes each action as "kind path" for compact comparison.
func summary(p Plan) []string {
	var out []string
	for _, a := range p.Actions {
		switch a.Kind {
		case CreateProject:
			out = append(out, fmt.Sprintf("%s %s [%s]", a.Kind, a.Project, strings.Join(a.Envs, " ")))
		case CreateEnvironment:
			out = append(out, fmt.Sprintf("%s %s/%s", a.Kind, a.Project, a.Env))
		case CreateBinding:
			out = append(out, fmt.Sprintf("%s %s", a.Kind, a.Binding.Name))
		default:
			out = append(out, fmt.Sprintf("%s %s", a.Kind, a.Path()))
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	full := State{
		Projects: []tokenward.Project{{Name: "payments", Envs: []string{"dev", "staging", "prod", "qa"}}},
		Bindings: []string{"deploy-prod", "review-apps", "unrelated"},
		RotationPolicies: []string{"payments/staging/STRIPE_KEY", "payments/prod/STRIPE_KEY",
			"payments/dev/DB_URL", "payments/staging/DB_URL", "payments/prod/DB_URL"},
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		full.Secrets = append(full.Secrets,
			tokenward.Secret{Project: "payments", Env: env, Name: "DB_URL", Owner: "team-data", Version: 3},
			tokenward.Secret{Project: "payments", Env: env, Name: "SENTRY_DSN", Version: 1})
		if env != "dev" {
			full.Secrets = append(full.Secrets, tokenward.Secret{Project: "payments", Env: env, Name: "STRIPE_KEY",
				Owner: "team-payments", Description: "Stripe live secret key", Tags: []string{"pci"}, Version: 1})
		}
	}
	// Extra things on the server are never deleted: full has a qa
	// environment and an unrelated binding, and the plan leaves them.
	tests := []struct {
		name  string
		state func() State
		want  []string
	}{
		{"empty server", func() State { return State{} }, []string{
			"create-project payments [dev staging prod]",
			"create-secret payments/staging/STRIPE_KEY", "needs-value payments/staging/STRIPE_KEY",
			"create-secret payments/prod/STRIPE_KEY", "needs-value payments/prod/STRIPE_KEY",
			"create-secret payments/dev/DB_URL", "needs-value payments/dev/DB_URL",
			"create-secret payments/staging/DB_URL", "needs-value payments/staging/DB_URL",
			"create-secret payments/prod/DB_URL", "needs-value payments/prod/DB_URL",
			"create-secret payments/dev/SENTRY_DSN", "needs-value payments/dev/SENTRY_DSN",
			"create-secret payments/staging/SENTRY_DSN", "needs-value payments/staging/SENTRY_DSN",
			"create-secret payments/prod/SENTRY_DSN", "needs-value payments/prod/SENTRY_DSN",
			"create-binding deploy-prod", "create-binding review-apps",
			"create-rotation-policy payments/staging/STRIPE_KEY", "create-rotation-policy payments/prod/STRIPE_KEY",
			"create-rotation-policy payments/dev/DB_URL", "create-rotation-policy payments/staging/DB_URL",
			"create-rotation-policy payments/prod/DB_URL",
		}},
		{"everything exists", func() State { return full }, nil},
		{"drift", func() State {
			s := full
			s.Projects = []tokenward.Project{{Name: "payments", Envs: []string{"prod"}}}
			s.Secrets = append([]tokenward.Secret(nil), full.Secrets...)
			for i := range s.Secrets {
				sec := &s.Secrets[i]
				switch sec.Path() {
				case "payments/prod/DB_URL":
					sec.Owner = "someone-else" // metadata differs
				case "payments/prod/STRIPE_KEY":
					sec.Tags = []string{"pci", "old"}
				case "payments/dev/SENTRY_DSN":
					sec.Version = 0 // metadata without a value
				case "payments/staging/SENTRY_DSN":
					sec.Name = "GONE"
				case "payments/prod/SENTRY_DSN":
					// Metadata the manifest does not set is left alone.
					sec.Owner, sec.Description, sec.Tags = "set-by-hand", "kept", []string{"kept"}
				case "payments/dev/DB_URL":
					sec.Description = "kept too"
				}
			}
			s.Bindings = []string{"review-apps"}
			s.RotationPolicies = full.RotationPolicies[1:]
			return s
		}, []string{
			"create-environment payments/dev", "create-environment payments/staging",
			"update-secret-metadata payments/prod/STRIPE_KEY",
			"update-secret-metadata payments/prod/DB_URL",
			"needs-value payments/dev/SENTRY_DSN",
			"create-secret payments/staging/SENTRY_DSN", "needs-value payments/staging/SENTRY_DSN",
			"create-binding deploy-prod",
			"create-rotation-policy payments/staging/STRIPE_KEY",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summary(m.Plan(tt.state()))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPlanNeverInventsValues(t *testing.T) {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	p := m.Plan(State{})
	if got, want := len(p.NeedsValues()), 8; got != want {
		t.Errorf("NeedsValues: got %d; want %d", got, want)
	}
	for _, a := range p.Changes() {
		if a.Kind == NeedsValue {
			t.Errorf("Changes holds %s for %s; want needs-value left to a person", a.Kind, a.Path())
		}
	}
}

func TestPlanText(t *testing.T) {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	var b bytes.Buffer
	if err := m.Plan(State{}).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	assertGolden(t, "plan.txt", b.Bytes())

	b.Reset()
	if err := (Plan{File: "tokenward.yaml", Project: "payments"}).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	assertGolden(t, "plan-empty.txt", b.Bytes())
}

func TestPlanUpdateCarriesOnlyChangedFields(t *testing.T) {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	state := State{
		Projects: []tokenward.Project{{Name: "payments", Envs: m.EnvNames()}},
		Secrets: []tokenward.Secret{{Project: "payments", Env: "prod", Name: "STRIPE_KEY", Version: 1,
			Owner: "team-payments", Description: "old words", Tags: []string{"pci"}}},
	}
	var got []Action
	for _, a := range m.Plan(state).Actions {
		if a.Kind == UpdateSecretMeta {
			got = append(got, a)
		}
	}
	want := []Action{{Kind: UpdateSecretMeta, Project: "payments", Env: "prod", Secret: "STRIPE_KEY",
		Description: "Stripe live secret key", Pos: Pos{4, 3}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("updates:\ngot  %+v\nwant %+v", got, want)
	}
}
