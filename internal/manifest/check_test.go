package manifest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

var checkNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// healthy returns facts under which the manifest of testdata passes: every
// secret exists with a fresh value, no expiry, no shared values, and the
// token holds exactly the grants the manifest implies.
func healthy(m *Manifest) Facts {
	var f Facts
	for _, e := range m.EnvNames() {
		for _, s := range m.SecretsIn(e) {
			f.Secrets = append(f.Secrets, tokenward.Secret{Project: m.Project, Env: e, Name: s.Name, Version: 2,
				CreatedAt: checkNow.Add(-60 * Day), UpdatedAt: checkNow.Add(-Day)})
		}
	}
	f.TokenGrants = m.ImpliedGrants("")
	return f
}

// with returns f with the secret at path changed by fn, or removed when fn
// is nil.
func with(f Facts, path string, fn func(*tokenward.Secret)) Facts {
	out := f
	out.Secrets = nil
	for _, s := range f.Secrets {
		if s.Path() == path {
			if fn == nil {
				continue
			}
			fn(&s)
		}
		out.Secrets = append(out.Secrets, s)
	}
	return out
}

func TestCheck(t *testing.T) {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	ok := healthy(m)
	type finding struct {
		Subject  string
		Class    Class
		Severity Severity
		Message  string
	}
	tests := []struct {
		name  string
		env   string
		facts Facts
		want  []finding
	}{
		{"healthy", "", ok, nil},
		{"healthy prod only", "prod", func() Facts { f := ok; f.TokenGrants = m.ImpliedGrants("prod"); return f }(), nil},
		{"missing", "prod", with(ok, "payments/prod/DB_URL", nil), []finding{
			{"prod/DB_URL", ClassMissing, SeverityError, "payments/prod/DB_URL is declared at testdata/tokenward.yaml:6 but does not exist on the server"},
		}},
		{"no value yet", "prod", with(ok, "payments/prod/DB_URL", func(s *tokenward.Secret) { s.Version = 0 }), []finding{
			{"prod/DB_URL", ClassMissing, SeverityError, "payments/prod/DB_URL exists but has no value yet"},
		}},
		{"missing in a secret's own environment only", "dev", with(ok, "payments/dev/STRIPE_KEY", nil), nil},
		{"expired", "prod", with(ok, "payments/prod/STRIPE_KEY", func(s *tokenward.Secret) { s.ExpiresAt = checkNow.Add(-50 * time.Hour) }), []finding{
			{"prod/STRIPE_KEY", ClassExpired, SeverityError, "payments/prod/STRIPE_KEY: the upstream credential expired at 2026-11-20T10:00:00Z, 2d2h ago"},
		}},
		{"expires exactly now", "prod", with(ok, "payments/prod/STRIPE_KEY", func(s *tokenward.Secret) { s.ExpiresAt = checkNow }), []finding{
			{"prod/STRIPE_KEY", ClassExpired, SeverityError, "payments/prod/STRIPE_KEY: the upstream credential expired at 2026-11-22T12:00:00Z, 0s ago"},
		}},
		{"expiring in window", "prod", with(ok, "payments/prod/STRIPE_KEY", func(s *tokenward.Secret) { s.ExpiresAt = checkNow.Add(14 * Day) }), []finding{
			{"prod/STRIPE_KEY", ClassExpiring, SeverityWarning, "payments/prod/STRIPE_KEY: the upstream credential expires at 2026-12-06T12:00:00Z, in 2w (warning window 2w)"},
		}},
		{"expiry outside window", "prod", with(ok, "payments/prod/STRIPE_KEY", func(s *tokenward.Secret) { s.ExpiresAt = checkNow.Add(14*Day + time.Second) }), nil},
		{"default window", "prod", with(ok, "payments/prod/DB_URL", func(s *tokenward.Secret) { s.ExpiresAt = checkNow.Add(10 * Day) }), []finding{
			{"prod/DB_URL", ClassExpiring, SeverityWarning, "payments/prod/DB_URL: the upstream credential expires at 2026-12-02T12:00:00Z, in 10d (warning window 2w)"},
		}},
		{"rotation overdue", "staging", with(ok, "payments/staging/STRIPE_KEY", func(s *tokenward.Secret) { s.UpdatedAt = checkNow.Add(-45 * Day) }), []finding{
			{"staging/STRIPE_KEY", ClassRotationOverdue, SeverityError, "payments/staging/STRIPE_KEY: last rotated or updated at 2026-10-08T12:00:00Z, 45d ago; rotate: 30d makes it overdue by 15d"},
		}},
		{"rotation due exactly now is not overdue", "staging", with(ok, "payments/staging/STRIPE_KEY", func(s *tokenward.Secret) { s.UpdatedAt = checkNow.Add(-30 * Day) }), nil},
		{"rotation from created when never updated", "staging", with(ok, "payments/staging/STRIPE_KEY", func(s *tokenward.Secret) { s.UpdatedAt = time.Time{} }), []finding{
			{"staging/STRIPE_KEY", ClassRotationOverdue, SeverityError, "payments/staging/STRIPE_KEY: last rotated or updated at 2026-09-23T12:00:00Z, 60d ago; rotate: 30d makes it overdue by 30d"},
		}},
		{"no rotate declared", "dev", with(ok, "payments/dev/DB_URL", func(s *tokenward.Secret) { s.UpdatedAt = checkNow.Add(-900 * Day) }), nil},
		{"same value in two environments", "", func() Facts {
			f := ok
			f.DuplicateGroups = [][]string{
				{"payments/staging/STRIPE_KEY", "payments/prod/STRIPE_KEY"},
				{"payments/prod/DB_URL", "payments/prod/SENTRY_DSN"}, // one environment: not this check's business
			}
			return f
		}(), []finding{
			{"staging/STRIPE_KEY", ClassDuplicateValue, SeverityError, "payments/staging/STRIPE_KEY has the same value as payments/prod/STRIPE_KEY; each environment needs its own credential"},
			{"prod/STRIPE_KEY", ClassDuplicateValue, SeverityError, "payments/prod/STRIPE_KEY has the same value as payments/staging/STRIPE_KEY; each environment needs its own credential"},
		}},
		{"same value in another project", "prod", func() Facts {
			f := ok
			f.DuplicateGroups = [][]string{{"payments/prod/DB_URL", "billing/prod/DB_URL", "payments/prod/SENTRY_DSN"}}
			f.TokenGrants = m.ImpliedGrants("prod")
			return f
		}(), []finding{
			{"prod/DB_URL", ClassDuplicateValue, SeverityError, "payments/prod/DB_URL has the same value as billing/prod/DB_URL; each environment needs its own credential"},
			{"prod/SENTRY_DSN", ClassDuplicateValue, SeverityError, "payments/prod/SENTRY_DSN has the same value as billing/prod/DB_URL; each environment needs its own credential"},
		}},
		{"excess grants", "prod", func() Facts {
			f := ok
			f.TokenGrants = tokenward.Grants{
				tokenward.MustParseGrant("read:payments/prod/STRIPE_KEY"), // needed
				tokenward.MustParseGrant("read:payments/prod/*"),
				tokenward.MustParseGrant("write:payments/prod/DB_URL"),
				tokenward.MustParseGrant("read:payments/dev/DB_URL"), // needed elsewhere, not in prod
			}
			return f
		}(), []finding{
			{"token", ClassExcessGrant, SeverityWarning, "the token's grant read:payments/prod/* is more than the manifest needs in prod (it needs only read:payments/prod/STRIPE_KEY, read:payments/prod/DB_URL, read:payments/prod/SENTRY_DSN)"},
			{"token", ClassExcessGrant, SeverityWarning, "the token's grant write:payments/prod/DB_URL is more than the manifest needs in prod (it needs only read:payments/prod/STRIPE_KEY, read:payments/prod/DB_URL, read:payments/prod/SENTRY_DSN)"},
			{"token", ClassExcessGrant, SeverityWarning, "the token's grant read:payments/dev/DB_URL is more than the manifest needs in prod (it needs only read:payments/prod/STRIPE_KEY, read:payments/prod/DB_URL, read:payments/prod/SENTRY_DSN)"},
		}},
		{"admin token", "", func() Facts {
			f := ok
			f.TokenGrants = append(f.TokenGrants, tokenward.MustParseGrant("admin:*/*/*"))
			return f
		}(), []finding{
			{"token", ClassExcessGrant, SeverityWarning, "the token's grant admin:*/*/* is more than the manifest needs (it needs only read:payments/dev/DB_URL, read:payments/dev/SENTRY_DSN, read:payments/staging/STRIPE_KEY, read:payments/staging/DB_URL, read:payments/staging/SENTRY_DSN and 3 more)"},
		}},
		{"other projects' facts are ignored", "prod", func() Facts {
			f := with(ok, "payments/prod/DB_URL", nil)
			f.Secrets = append(f.Secrets, tokenward.Secret{Project: "billing", Env: "prod", Name: "DB_URL", Version: 1})
			f.TokenGrants = m.ImpliedGrants("prod")
			return f
		}(), []finding{
			{"prod/DB_URL", ClassMissing, SeverityError, "payments/prod/DB_URL is declared at testdata/tokenward.yaml:6 but does not exist on the server"},
		}},
		{"unknown environment", "qa", ok, []finding{
			{"qa", ClassUnknownEnv, SeverityError, `environment "qa" is not declared in testdata/tokenward.yaml (declared: dev, staging, prod)`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts := tt.facts
			if tt.env != "" && tt.name != "excess grants" && tt.name != "admin token" {
				facts.TokenGrants = m.ImpliedGrants(tt.env)
			}
			r := Check(m, tt.env, facts, checkNow)
			var got []finding
			for _, f := range r.Findings {
				got = append(got, finding{f.subject(), f.Class, f.Severity, f.Message})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCheckTargets(t *testing.T) {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	tests := []struct {
		env  string
		want int
	}{{"", 8}, {"dev", 2}, {"staging", 3}, {"prod", 3}, {"qa", 0}}
	for _, tt := range tests {
		if got := len(Check(m, tt.env, Facts{}, checkNow).Targets); got != tt.want {
			t.Errorf("Check(%q): got %d targets; want %d", tt.env, got, tt.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	errF := Finding{Class: ClassMissing, Severity: SeverityError}
	warnF := Finding{Class: ClassExpiring, Severity: SeverityWarning}
	usageF := Finding{Class: ClassUnknownEnv, Severity: SeverityError}
	tests := []struct {
		name     string
		findings []Finding
		strict   bool
		want     int
	}{
		{"clean", nil, false, ExitOK},
		{"clean strict", nil, true, ExitOK},
		{"warnings", []Finding{warnF}, false, ExitOK},
		{"warnings strict", []Finding{warnF}, true, ExitWarnings},
		{"errors", []Finding{warnF, errF}, false, ExitErrors},
		{"errors strict", []Finding{errF, warnF}, true, ExitErrors},
		{"unknown env", []Finding{usageF}, false, ExitUsage},
	}
	for _, tt := range tests {
		if got := (Report{Findings: tt.findings}).ExitCode(tt.strict); got != tt.want {
			t.Errorf("%s: ExitCode(%v): got %d; want %d", tt.name, tt.strict, got, tt.want)
		}
	}
}

// goldenReport has one finding of every class but unknown-environment.
func goldenReport(t *testing.T) Report {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	f := healthy(m)
	f = with(f, "payments/dev/DB_URL", nil)
	f = with(f, "payments/dev/SENTRY_DSN", func(s *tokenward.Secret) { s.Version = 0 })
	f = with(f, "payments/staging/STRIPE_KEY", func(s *tokenward.Secret) { s.ExpiresAt = checkNow.Add(-3 * Day) })
	f = with(f, "payments/prod/STRIPE_KEY", func(s *tokenward.Secret) {
		s.ExpiresAt = checkNow.Add(5 * Day)
		s.UpdatedAt = checkNow.Add(-40 * Day)
	})
	f.DuplicateGroups = [][]string{{"payments/staging/DB_URL", "payments/prod/DB_URL"}}
	f.TokenGrants = append(f.TokenGrants, tokenward.MustParseGrant("write:payments/prod/*"))
	return Check(m, "", f, checkNow)
}

func TestReportText(t *testing.T) {
	var b bytes.Buffer
	if err := goldenReport(t).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	assertGolden(t, "check.txt", b.Bytes())

	b.Reset()
	m := MustParseFile(t, "testdata/tokenward.yaml")
	f := healthy(m)
	f.TokenGrants = m.ImpliedGrants("prod")
	if err := Check(m, "prod", f, checkNow).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "tokenward check: project payments, environments prod (testdata/tokenward.yaml)\n3 checks: 0 errors, 0 warnings\n"; got != want {
		t.Errorf("text: got %q; want %q", got, want)
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	r := goldenReport(t)
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	assertGolden(t, "check.json", b.Bytes())

	var back struct {
		Findings []Finding `json:"findings"`
		Summary  jsonSummary
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse back: %v", err)
	}
	if !reflect.DeepEqual(back.Findings, r.Findings) {
		t.Errorf("findings after a round trip:\ngot  %+v\nwant %+v", back.Findings, r.Findings)
	}
	if got, want := back.Summary, (jsonSummary{Checks: 8, Errors: 6, Warnings: 2}); got != want {
		t.Errorf("summary: got %+v; want %+v", got, want)
	}

	// A clean report has an empty list of findings, not null.
	b.Reset()
	m := MustParseFile(t, "testdata/tokenward.yaml")
	if err := (Report{Project: m.Project}).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"findings": []`) {
		t.Errorf("clean JSON: got %s; want \"findings\": []", b.String())
	}
}

func TestReportJUnit(t *testing.T) {
	var b bytes.Buffer
	r := goldenReport(t)
	if err := r.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	assertGolden(t, "check.junit.xml", b.Bytes())

	var back junitSuites
	if err := xml.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("JUnit does not parse back: %v", err)
	}
	cases, failures := 0, 0
	for _, s := range back.Suites {
		cases += len(s.Cases)
		for _, c := range s.Cases {
			failures += len(c.Failures)
		}
	}
	// One case per secret×environment plus the token's least-privilege
	// case; one failure per finding.
	if got, want := cases, len(r.Targets)+1; got != want {
		t.Errorf("test cases: got %d; want %d", got, want)
	}
	if got, want := failures, len(r.Findings); got != want {
		t.Errorf("failures: got %d; want %d", got, want)
	}
	if got, want := back.Tests, cases; got != want {
		t.Errorf("tests attribute: got %d; want %d", got, want)
	}
}

func TestReportJUnitUnknownEnv(t *testing.T) {
	m := MustParseFile(t, "testdata/tokenward.yaml")
	var b bytes.Buffer
	if err := Check(m, "qa", Facts{}, checkNow).WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `<testcase name="environment" classname="tokenward.payments.qa"`) ||
		!strings.Contains(b.String(), `type="error: unknown-environment"`) {
		t.Errorf("JUnit for an unknown environment: got\n%s\nwant a failing environment case", b.String())
	}
}

// The plan prints rotator config keys, never their values: a config may
// hold more than it should, and plans land in CI logs.
func TestPlanTextHidesRotatorConfigValues(t *testing.T) {
	const value = "hunter2-not-for-logs"
	in := base + "secrets:\n  A:\nrotation:\n  A: {every: 1d, rotator: webhook, config: {url: https://x.example, token: " + value + "}}\n"
	m, err := Parse("m.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.Plan(State{}).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), value) {
		t.Errorf("plan text holds a config value:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "config token,url") {
		t.Errorf("plan text: got\n%s\nwant the config keys listed", b.String())
	}
}
