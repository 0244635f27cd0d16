package manifest

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// FuzzParseNames checks that what Parse accepts passes the same checks
// the server makes on each part (validation agrees with the parser): every
// environment and secret name is one the server takes, a secret's
// environments are declared ones, durations are not negative and the
// policy form gives them back, each rotation names a declared secret,
// each pipeline's grants survive their string form; and that parsing
// and checking are deterministic.
func FuzzParseNames(f *testing.F) {
	data, err := os.ReadFile("testdata/tokenward.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(base + "secrets:\n  A: {environments: [prod], rotate: 30d, warn_before_expiry: 1w}\n  B: {}\n"))
	f.Add([]byte(base + "secrets:\n  A: {environments: [staging]}\n"))
	f.Add([]byte(base + "secrets:\n  a-b: {}\n  A: {}\n  A: {}\n"))
	f.Add([]byte(base + "secrets: {A: {}}\nrotation: {A: {every: 0s, rotator: random}, B: {every: 1d, rotator: random}}\n"))
	f.Add([]byte("project: Payments\nenvironments: [Dev, dev, dev]\n"))
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("f.yaml", data)
		if err != nil {
			return
		}
		envs := m.EnvNames()
		for i, e := range envs {
			if tokenward.ValidateEnvName(e) != nil || slices.Index(envs, e) != i {
				t.Fatalf("accepted environment %q (twice, or a name the server refuses)", e)
			}
		}
		var names []string
		for _, s := range m.Secrets {
			if tokenward.ValidateSecretName(s.Name) != nil || slices.Contains(names, s.Name) {
				t.Fatalf("accepted secret %q (twice, or a name the server refuses)", s.Name)
			}
			names = append(names, s.Name)
			for _, e := range s.Environments {
				if !m.HasEnv(e) {
					t.Fatalf("secret %s needs undeclared environment %q", s.Name, e)
				}
			}
			for _, d := range []time.Duration{s.Rotate, s.WarnBeforeExpiry} {
				if back, err := ParseDuration(FormatDuration(d)); d < 0 || err != nil || back != d {
					t.Fatalf("secret %s: duration %v does not survive its written form (%v, %v)", s.Name, d, back, err)
				}
			}
		}
		for _, r := range m.Rotation {
			if !slices.Contains(names, r.Secret) {
				t.Fatalf("rotation for undeclared secret %q", r.Secret)
			}
			if r.Every < 0 || r.Jitter < 0 || r.Grace < 0 {
				t.Fatalf("rotation %s: negative duration", r.Secret)
			}
		}
		for _, p := range m.Pipelines {
			for _, g := range p.Grants {
				if back, err := tokenward.ParseGrant(g.String()); err != nil || back != g {
					t.Fatalf("pipeline %s: grant %v does not survive its string form", p.Name, g)
				}
			}
		}
		again, err := Parse("f.yaml", data)
		if err != nil || !slices.Equal(again.EnvNames(), envs) || len(again.Secrets) != len(m.Secrets) {
			t.Fatalf("a second Parse differs: %v", err)
		}
		for _, e := range append([]string{""}, envs...) {
			r1, r2 := Check(m, e, Facts{}, now), Check(again, e, Facts{}, now)
			if len(r1.Findings) != len(r2.Findings) {
				t.Fatalf("Check(%q) is not deterministic: %d then %d findings", e, len(r1.Findings), len(r2.Findings))
			}
		}
	})
}
