package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/manifest"
)

// loadManifest reads the manifest; every problem is a usage error (exit
// 2), printed as file:line:column lines.
func loadManifest(path string) (*manifest.Manifest, error) {
	m, err := manifest.ParseFile(path)
	var list manifest.ErrorList
	switch {
	case err == nil:
		return m, nil
	case errors.As(err, &list):
		return nil, &exitError{code: manifest.ExitUsage, err: fmt.Errorf("%s: %d problem(s):\n%w", path, len(list), err)}
	default:
		return nil, &exitError{code: manifest.ExitUsage, err: fmt.Errorf("manifest: %w", err)}
	}
}

func (m *Main) newCheckCommand() *cobra.Command {
	var cf clientFlags
	var file, env, output, at string
	var strict bool
	cmd := &cobra.Command{
		Use:   "check [--manifest tokenward.yaml] [--env ENV] [--output text|json|junit] [--strict]",
		Short: "Preflight: check that the secrets tokenward.yaml declares exist, are fresh and unique",
		Long: `check compares the manifest with what the server reports (metadata only; duplicate
values are found by the server with keyed fingerprints, and no value leaves it).

Exit codes: 0 no errors, 1 at least one error (or the server could not be asked),
2 usage or manifest error or unknown --env, 3 warnings only with --strict.`,
		Example: "  tokenward check --env prod --strict\n  tokenward check --at 2027-01-01 -o junit > check.xml",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var write func(manifest.Report) error
			switch output {
			case "text":
				write = func(r manifest.Report) error { return r.WriteText(m.Stdout) }
			case "json":
				write = func(r manifest.Report) error { return r.WriteJSON(m.Stdout) }
			case "junit":
				write = func(r manifest.Report) error { return r.WriteJUnit(m.Stdout) }
			}
			now := time.Now()
			if at != "" {
				t, err := parseDate(at)
				if err != nil {
					return usageError("--at: %v", err)
				}
				now = t
			}
			man, err := loadManifest(file)
			if err != nil {
				return err
			}
			var facts manifest.Facts
			if env == "" || man.HasEnv(env) {
				c, err := m.client(&cf)
				if err != nil {
					return err
				}
				if facts, err = gatherFacts(cmd.Context(), c, man, env); err != nil {
					return cliError(err)
				}
			}
			report := manifest.Check(man, env, facts, now)
			if err := write(report); err != nil {
				return err
			}
			if code := report.ExitCode(strict); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cf.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&file, "manifest", manifest.DefaultFile, "the manifest")
	f.StringVar(&env, "env", "", "check one declared environment (default: all)")
	outputFlag(cmd, &output, "text", "json", "junit")
	f.BoolVar(&strict, "strict", false, "fail on warnings too (exit code 3)")
	f.StringVar(&at, "at", "", "check as of this date (YYYY-MM-DD or RFC 3339) instead of now: will the pipeline still pass then?")
	return cmd
}

// gatherFacts asks the server what check needs: each environment's secret
// metadata, the groups of equal values (compared on the server), and the
// token's own grants.
func gatherFacts(ctx context.Context, c *client.Client, man *manifest.Manifest, env string) (manifest.Facts, error) {
	var facts manifest.Facts
	envs := man.EnvNames()
	if env != "" {
		envs = []string{env}
	}
	for _, e := range envs {
		list, err := c.Secrets(ctx, man.Project, e)
		switch {
		case tokenward.ErrorCode(err) == tokenward.ENOTFOUND:
			continue // no project or environment yet: every secret there is missing
		case tokenward.ErrorCode(err) == tokenward.EFORBIDDEN:
			return facts, fmt.Errorf("cannot check %s/%s: %v; the check token needs read on the manifest's secrets", man.Project, e, cliError(err))
		case err != nil:
			return facts, err
		}
		for _, s := range list {
			facts.Secrets = append(facts.Secrets, *s)
		}
	}
	groups, err := c.Duplicates(ctx, man.Project)
	if err != nil && tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		return facts, err
	}
	facts.DuplicateGroups = groups
	self, err := c.Self(ctx)
	if err != nil {
		return facts, err
	}
	facts.TokenGrants = self.Grants
	return facts, nil
}
