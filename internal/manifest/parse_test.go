package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// MustParseFile parses a manifest under testdata or fails the test.
func MustParseFile(tb testing.TB, path string) *Manifest {
	tb.Helper()
	m, err := ParseFile(path)
	if err != nil {
		tb.Fatalf("ParseFile(%s): %v", path, err)
	}
	return m
}

func TestParseFull(t *testing.T) {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	if got, want := m.Project, "payments"; got != want {
		t.Errorf("Project: got %q; want %q", got, want)
	}
	if got, want := m.ProjectPos, (Pos{Line: 1, Column: 10}); got != want {
		t.Errorf("ProjectPos: got %+v; want %+v", got, want)
	}
	if got, want := m.EnvNames(), []string{"dev", "staging", "prod"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EnvNames: got %v; want %v", got, want)
	}
	wantSecrets := []*Secret{
		{Name: "STRIPE_KEY", Pos: Pos{4, 3}, Environments: []string{"staging", "prod"}, Owner: "team-payments",
			Description: "Stripe live secret key", Tags: []string{"pci"}, Rotate: 30 * Day, WarnBeforeExpiry: 14 * Day},
		{Name: "DB_URL", Pos: Pos{6, 3}, Environments: []string{"dev", "staging", "prod"}, AllEnvironments: true, Owner: "team-data"},
		{Name: "SENTRY_DSN", Pos: Pos{7, 3}, Environments: []string{"dev", "staging", "prod"}, AllEnvironments: true},
	}
	if !reflect.DeepEqual(m.Secrets, wantSecrets) {
		for i := range max(len(m.Secrets), len(wantSecrets)) {
			if i < len(m.Secrets) && i < len(wantSecrets) {
				t.Errorf("secret %d: got %+v; want %+v", i, *m.Secrets[i], *wantSecrets[i])
			}
		}
		t.Fatalf("Secrets: got %d; want %d", len(m.Secrets), len(wantSecrets))
	}
	wantPipelines := []*Pipeline{{
		Name: "deploy-prod", Pos: Pos{9, 3}, Preset: "github", Issuer: IssuerGitHub, Audiences: []string{"tokenward"},
		Claims: []Claim{
			{Name: "repository", Values: []string{"acme/payments"}, Pos: Pos{12, 14}},
			{Name: "ref", Values: []string{"refs/heads/main"}, Pos: Pos{12, 41}},
			{Name: "environment", Values: []string{"production"}, Pos: Pos{12, 63}},
		},
		Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, TTL: 15 * time.Minute, Enabled: true,
	}, {
		Name: "review-apps", Pos: Pos{15, 3}, Preset: "gitlab", Issuer: "https://gitlab.example.com", Audiences: []string{"tokenward", "other"},
		Claims: []Claim{
			{Name: "project_path", Values: []string{"acme/payments"}, Pos: Pos{19, 7}},
			{Name: "ref", Values: []string{"main", "release/*"}, Pos: Pos{20, 7}},
		},
		Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/staging/DB_URL")}, TTL: DefaultTTL, Enabled: false,
	}}
	if !reflect.DeepEqual(m.Pipelines, wantPipelines) {
		for i := range min(len(m.Pipelines), len(wantPipelines)) {
			t.Errorf("pipeline %d: got %+v; want %+v", i, *m.Pipelines[i], *wantPipelines[i])
		}
		t.Fatalf("Pipelines: got %d; want %d", len(m.Pipelines), len(wantPipelines))
	}
	wantRotation := []*RotationPolicy{{
		Secret: "STRIPE_KEY", Pos: Pos{25, 3}, Every: 30 * Day, Jitter: time.Hour, Grace: 24 * time.Hour, Rotator: "random",
		Config: map[string]string{"length": "32"},
	}, {
		Secret: "DB_URL", Pos: Pos{26, 3}, Cron: "0 3 * * 1", Rotator: "postgres",
		Config: map[string]string{"dsn_secret": "payments/prod/DB_ADMIN_URL", "role": "app"},
	}}
	if !reflect.DeepEqual(m.Rotation, wantRotation) {
		for i := range min(len(m.Rotation), len(wantRotation)) {
			t.Errorf("rotation %d: got %+v; want %+v", i, *m.Rotation[i], *wantRotation[i])
		}
		t.Fatalf("Rotation: got %d; want %d", len(m.Rotation), len(wantRotation))
	}
	if got, want := m.ImpliedGrants("prod").Strings(), []string{"read:payments/prod/STRIPE_KEY", "read:payments/prod/DB_URL", "read:payments/prod/SENTRY_DSN"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ImpliedGrants(prod): got %v; want %v", got, want)
	}
	if got, want := len(m.ImpliedGrants("")), 8; got != want {
		t.Errorf("len(ImpliedGrants(\"\")): got %d; want %d", got, want)
	}
}

// base is a valid start that error cases extend.
const base = "project: payments\nenvironments: [dev, prod]\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // each error's full text, in order
	}{
		{"empty", "", []string{"m.yaml:1: manifest is empty"}},
		{"comment only", "# nothing\n", []string{"m.yaml:1: manifest is empty"}},
		{"not a mapping", "- a\n- b\n", []string{
			"m.yaml:1:1: manifest: want a mapping, got a list",
		}},
		// The line of a syntax error is yaml.v3's own; for some parser
		// errors it is one early (it counts them from 0).
		{"syntax", "project: payments\nenvironments: [dev\n", []string{"m.yaml:1: invalid YAML: did not find expected ',' or ']'"}},
		{"syntax without a line", "a: *x\n", []string{"m.yaml:1: invalid YAML: an alias (*name) refers to no anchor (&name) before it; quote a value that starts with '*'"}},
		{"two documents", base + "---\nproject: x\n", []string{"m.yaml:3:1: manifest holds more than one YAML document"}},
		{"missing project and envs", "secrets: {}\n", []string{
			`m.yaml:1:1: manifest: missing key "project"`,
			`m.yaml:1:1: manifest: missing key "environments"`,
		}},
		{"unknown top key", base + "secret: {}\n", []string{
			`m.yaml:3:1: manifest: unknown key "secret" (want one of project, environments, secrets, pipelines, rotation, dynamic)`,
		}},
		{"duplicate top key", base + "project: other\n", []string{
			`m.yaml:3:1: manifest: duplicate key "project" (first at line 1)`,
		}},
		{"bad project name", "project: Payments\nenvironments: [dev]\n", []string{
			"m.yaml:1:10: project: not a valid project name (a lowercase DNS label: a-z, 0-9, inner '-', at most 63 characters)",
		}},
		{"project not a string", "project: [a]\nenvironments: [dev]\n", []string{
			"m.yaml:1:10: project: want a string, got a list",
		}},
		{"environments not a list", "project: p\nenvironments: dev\n", []string{
			"m.yaml:2:15: environments: want a list, got a string",
		}},
		{"no environments", "project: p\nenvironments: []\n", []string{
			"m.yaml:2:15: environments: declare at least one environment",
		}},
		{"bad and duplicate env", "project: p\nenvironments: [dev, Prod, dev]\n", []string{
			"m.yaml:2:21: environments: not a valid environment name (a lowercase DNS label: a-z, 0-9, inner '-', at most 63 characters)",
			`m.yaml:2:27: environments: "dev" is listed twice (first at line 2)`,
		}},
		{"bad secret name", base + "secrets:\n  1KEY: {}\n", []string{
			"m.yaml:4:3: secrets: key is not a valid secret name (an environment variable name: [A-Za-z_][A-Za-z0-9_]*, at most 255 characters)",
		}},
		{"duplicate secret", base + "secrets:\n  A: {}\n  A: {owner: x}\n", []string{
			`m.yaml:5:3: secrets: duplicate key "A" (first at line 4)`,
		}},
		{"unknown secret key", base + "secrets:\n  A: {owner: x, rotation: 30d}\n", []string{
			`m.yaml:4:17: secret A: unknown key "rotation" (want one of environments, owner, description, tags, rotate, warn_before_expiry)`,
		}},
		{"unknown environment", base + "secrets:\n  A: {environments: [prod, staging]}\n", []string{
			`m.yaml:4:28: secret A: environments: unknown environment "staging" (declared: dev, prod)`,
		}},
		{"empty environments", base + "secrets:\n  A: {environments: []}\n", []string{
			"m.yaml:4:21: secret A: environments: an empty list (leave the key out to mean every environment)",
		}},
		{"bad duration", base + "secrets:\n  A:\n    rotate: 30\n    warn_before_expiry: 1.5d\n", []string{
			"m.yaml:5:13: secret A: rotate: duration is missing a unit (s, m, h, d or w)",
			"m.yaml:6:25: secret A: warn_before_expiry: duration has an unknown unit (want s, m, h, d or w)",
		}},
		{"zero duration", base + "secrets:\n  A: {rotate: 0d}\n", []string{
			"m.yaml:4:15: secret A: rotate: duration must be more than zero",
		}},
		{"wrong types", base + "secrets:\n  A: {owner: [x], tags: pci, description: {a: b}}\n", []string{
			"m.yaml:4:14: secret A: owner: want a string, got a list",
			"m.yaml:4:25: secret A: tags: want a list, got a string",
			"m.yaml:4:43: secret A: description: want a string, got a mapping",
		}},
		{"too many tags", base + "secrets:\n  A: {tags: [" + strings.Repeat("t,", 32) + "t]}\n", []string{
			"m.yaml:4:3: secret A: more than 32 tags",
		}},
		{"merge key", base + "secrets:\n  A: &a {owner: x}\n  B: {<<: *a}\n", []string{
			"m.yaml:5:7: secret B: merge keys (<<) are not supported",
		}},
		{"pipeline without claims", base + "pipelines:\n  deploy: {preset: github, grants: ['read:payments/prod/*']}\n", []string{
			"m.yaml:4:3: pipeline deploy: declare at least one claim condition (with none, every repository on the issuer would be trusted)",
		}},
		{"pipeline empty claims", base + "pipelines:\n  deploy: {preset: github, claims: {}, grants: ['read:payments/prod/*']}\n", []string{
			"m.yaml:4:36: pipeline deploy: claims: declare at least one claim condition (with none, every repository on the issuer would be trusted)",
		}},
		{"pipeline wildcard claim", base + "pipelines:\n  deploy: {preset: github, claims: {repository: '*'}, grants: ['read:payments/prod/*']}\n", []string{
			"m.yaml:4:49: pipeline deploy: claims: repository: a value that is empty or only '*' would match any job",
		}},
		{"pipeline no issuer", base + "pipelines:\n  deploy: {claims: {ref: main}, grants: ['read:payments/prod/*']}\n", []string{
			"m.yaml:4:3: pipeline deploy: give a preset (github, gitlab) or an issuer",
		}},
		{"pipeline bad issuer and preset", base + "pipelines:\n  deploy: {preset: circle, issuer: 'http://x', claims: {ref: main}, grants: ['read:payments/prod/*']}\n", []string{
			"m.yaml:4:20: pipeline deploy: preset: unknown preset (want github or gitlab)",
			"m.yaml:4:36: pipeline deploy: issuer: want an https URL with a host and no query (like https://token.actions.githubusercontent.com)",
		}},
		{"pipeline grants", base + "pipelines:\n  deploy:\n    preset: github\n    claims: {ref: main}\n    grants: ['read:other/prod/*', 'read:payments/qa/*', 'fly:payments/prod/*']\n", []string{
			`m.yaml:7:14: pipeline deploy: grant read:other/prod/* is outside project "payments"`,
			`m.yaml:7:35: pipeline deploy: grant read:payments/qa/*: unknown environment "qa"`,
			`m.yaml:7:57: pipeline deploy: grants: not a grant (want action:project/env/name, like read:payments/prod/*, or gateway:ROUTE)`,
		}},
		{"pipeline no grants, long ttl, bad enabled", base + "pipelines:\n  deploy: {preset: github, claims: {ref: main}, ttl: 2d, enabled: yes}\n", []string{
			"m.yaml:4:3: pipeline deploy: declare the grants the pipeline's token gets",
			"m.yaml:4:54: pipeline deploy: ttl: longer than 1d",
			"m.yaml:4:67: pipeline deploy: enabled: want true or false, got a string",
		}},
		{"pipeline bad name", base + "pipelines:\n  Deploy_Prod: {preset: github, claims: {ref: main}, grants: ['read:payments/prod/*']}\n", []string{
			"m.yaml:4:3: pipelines: key is not a valid pipeline name (a lowercase DNS label: a-z, 0-9, inner '-')",
		}},
		{"rotation of undeclared secret", base + "rotation:\n  A: {every: 30d, rotator: random}\n", []string{
			`m.yaml:4:3: rotation: "A" is not declared under secrets`,
		}},
		{"rotation errors", base + "secrets:\n  A: {rotate: 30d}\nrotation:\n  A: {every: 60d, cron: 'every day', rotator: Random}\n", []string{
			"m.yaml:6:14: rotation A: every: 60d is longer than the secret's rotate: 30d, so rotation would always be overdue",
			"m.yaml:6:14: rotation A: give either every or cron, not both",
			"m.yaml:6:47: rotation A: rotator: not a rotator name (like random, tokenward, postgres, webhook, exec)",
		}},
		{"rotation missing fields", base + "secrets:\n  A:\nrotation:\n  A: {jitter: 1h}\n", []string{
			"m.yaml:6:3: rotation A: give every (like 30d) or cron",
			`m.yaml:6:3: rotation A: missing key "rotator"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse("m.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse: got manifest %+v; want errors %q", m, tt.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse: got %T; want ErrorList", err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\ngot  %q\nwant %q", got, tt.want)
			}
			if code := tokenward.ErrorCode(err); code != tokenward.EINVALID {
				t.Errorf("ErrorCode: got %q; want %q", code, tokenward.EINVALID)
			}
		})
	}
}

func TestParseAliases(t *testing.T) {
	in := base + "secrets:\n  A: &meta {owner: team-a, tags: [pci]}\n  B: *meta\n"
	m, err := Parse("m.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := m.Secret("B").Owner, "team-a"; got != want {
		t.Errorf("B's owner through an alias: got %q; want %q", got, want)
	}
}

// TestParseBooleans: YAML spells its booleans true, True and TRUE; each
// means what it says (True read as false disabled a pipeline).
func TestParseBooleans(t *testing.T) {
	for _, tt := range []struct {
		spelt string
		want  bool
	}{{"true", true}, {"True", true}, {"TRUE", true}, {"false", false}, {"False", false}, {"FALSE", false}} {
		in := base + "pipelines:\n  deploy: {preset: github, claims: {ref: main}, grants: ['read:payments/prod/*'], enabled: " + tt.spelt + "}\n" +
			"dynamic:\n  db: {kind: postgres, admin_secret: A, ttl: 1h, skip_check: " + tt.spelt + "}\n"
		m, err := Parse("m.yaml", []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", tt.spelt, err)
		}
		if got := m.Pipelines[0].Enabled; got != tt.want {
			t.Errorf("enabled: %s: got %v; want %v", tt.spelt, got, tt.want)
		}
		if got := m.Dynamic[0].SkipCheck; got != tt.want {
			t.Errorf("skip_check: %s: got %v; want %v", tt.spelt, got, tt.want)
		}
	}
}

func TestParseTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenward.yaml")
	data := []byte(base + "# " + strings.Repeat("x", MaxSize) + "\n")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(path)
	if got, want := errString(err), path+":1: manifest is larger than 1048576 bytes"; got != want {
		t.Errorf("ParseFile: got %q; want %q", got, want)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// A value pasted into the wrong place (a token as an owner list, a key as a
// duration) must not reach an error message, which CI prints to its log.
func TestParseErrorsNeverEchoValues(t *testing.T) {
	const leak = "sk_live_51HvYzQ2eZvKYlo2C0FAKEFAKEFAKE"
	tests := []string{
		base + "secrets:\n  A: {rotate: " + leak + "}\n",
		base + "secrets:\n  A: {owner: [" + leak + "]}\n",
		base + "secrets:\n  A: {environments: [" + leak + "]}\n",
		base + "secrets:\n  A: {description: {x: " + leak + "}}\n",
		base + "secrets:\n  A: {tags: " + leak + "}\n",
		"project: " + leak + "\nenvironments: [dev]\n",
		"project: p\nenvironments: [" + strings.ToLower(leak) + "]\n",
		base + "pipelines:\n  d: {issuer: 'http://" + leak + "', claims: {ref: main}, grants: ['read:payments/prod/*']}\n",
		base + "pipelines:\n  d: {preset: " + leak + ", claims: {ref: main}, grants: ['read:payments/prod/*']}\n",
		base + "pipelines:\n  d: {preset: github, claims: {ref: main}, grants: ['read:payments/prod/*'], ttl: " + leak + "}\n",
		base + "secrets:\n  A:\nrotation:\n  A: {every: 1d, rotator: random, config: {password: [" + leak + "]}}\n",
		base + "secrets:\n  A:\nrotation:\n  A: {cron: '" + leak + "', rotator: random}\n",
		base + "secrets:\n  A:\nrotation:\n  A: {every: 1d, rotator: " + leak + "}\n",
		base + "secrets:\n  A: {owner: x, unknown: " + leak + "}\n",
		base + "token: " + leak + "\n",
		base + "secrets:\n  A: \"" + leak + "\n",
	}
	for i, in := range tests {
		_, err := Parse("m.yaml", []byte(in))
		if err == nil {
			t.Errorf("case %d: got no error; want one", i)
			continue
		}
		if strings.Contains(err.Error(), leak) || strings.Contains(err.Error(), strings.ToLower(leak)) {
			t.Errorf("case %d: error echoes the value: %q", i, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/tokenward.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base + "secrets:\n  A: &a {owner: x}\n  B: *a\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("project: p\nenvironments: [dev]\nsecrets: {A: {rotate: 1w2d}}\nrotation: {A: {cron: '0 3 * * 1', rotator: random}}\n"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("f.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("got %T %v; want a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.Line < 1 || e.File != "f.yaml" {
					t.Fatalf("error without a line: %#v", e)
				}
			}
			return
		}
		if tokenward.ValidateProjectName(m.Project) != nil || len(m.Environments) == 0 {
			t.Fatalf("accepted an invalid manifest: project %q, %d environments", m.Project, len(m.Environments))
		}
		for _, s := range m.Secrets {
			if len(s.Environments) == 0 {
				t.Fatalf("secret %s has no environments", s.Name)
			}
		}
		for _, p := range m.Pipelines {
			if len(p.Claims) == 0 || len(p.Grants) == 0 || p.Issuer == "" {
				t.Fatalf("accepted pipeline %s without claims, grants or issuer", p.Name)
			}
		}
	})
}

// TestPipelineGatewayGrant: a pipeline may be granted a gateway route
// (gateway:<route>), which is in no project; core decides at apply time
// whether the applier may grant it.
func TestPipelineGatewayGrant(t *testing.T) {
	m, err := Parse("m.yaml", []byte(base+"pipelines:\n  deploy:\n    preset: github\n    claims: {ref: main}\n    grants: ['read:payments/prod/*', 'gateway:github', 'gateway:ci-*']\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Pipelines[0].Grants.Strings(), []string{"read:payments/prod/*", "gateway:github", "gateway:ci-*"}; !reflect.DeepEqual(got, want) {
		t.Errorf("grants: got %v; want %v", got, want)
	}
	if _, err := Parse("m.yaml", []byte(base+"pipelines:\n  deploy:\n    preset: github\n    claims: {ref: main}\n    grants: ['gateway:Not_A_Route']\n")); err == nil {
		t.Error("a malformed gateway grant parsed; want an error")
	}
}
