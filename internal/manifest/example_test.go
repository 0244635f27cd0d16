package manifest_test

import (
	"fmt"
	"os"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/manifest"
)

func Example() {
	m, err := manifest.Parse("tokenward.yaml", []byte(`
project: payments
environments: [staging, prod]
secrets:
  STRIPE_KEY: {owner: team-payments, rotate: 30d}
`))
	if err != nil {
		fmt.Println(err) // every error carries file:line:column
		return
	}
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	facts := manifest.Facts{
		Secrets: []tokenward.Secret{
			{Project: "payments", Env: "prod", Name: "STRIPE_KEY", Version: 4, UpdatedAt: now.Add(-2 * manifest.Day)},
		},
		TokenGrants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/STRIPE_KEY")},
	}
	r := manifest.Check(m, "prod", facts, now)
	r.WriteText(os.Stdout)
	fmt.Println("exit code:", r.ExitCode(true))
	// Output:
	// tokenward check: project payments, environments prod (tokenward.yaml)
	// 1 checks: 0 errors, 0 warnings
	// exit code: 0
}

func ExampleParse_error() {
	_, err := manifest.Parse("tokenward.yaml", []byte("project: payments\nenvironments: [prod]\nsecrets:\n  DB_URL: {environments: [staging], rotate: 30}\n"))
	fmt.Println(err)
	// Output:
	// tokenward.yaml:4:27: secret DB_URL: environments: unknown environment "staging" (declared: prod)
	// tokenward.yaml:4:45: secret DB_URL: rotate: duration is missing a unit (s, m, h, d or w)
}
