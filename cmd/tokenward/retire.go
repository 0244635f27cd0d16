package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

// newRetireCommand is project retire PROJECT or env retire PROJECT/ENV. It
// prints the plan first (always), then carries it out unless --dry-run.
func (m *Main) newRetireCommand(a argument) *cobra.Command {
	var dryRun bool
	var retention string
	use, short := "retire PROJECT/ENV [--dry-run] [--retention 30d]", "Retire an environment: revoke or narrow its tokens, archive its secrets (plan printed first)"
	example := "  tokenward env retire payments/staging --dry-run\n  tokenward env retire payments/staging --retention 30d"
	if a == argProject {
		use, short = "retire PROJECT [--dry-run] [--retention 30d]", "Retire a project: every environment, as env retire does (plan printed first)"
		example = "  tokenward project retire payments --dry-run"
	}
	cmd := &cobra.Command{Use: use, Short: short, Example: example, Args: exactArgs(a), ValidArgsFunction: m.complete(a)}
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if a == argProject {
			if err := tokenward.ValidateProjectName(args[0]); err != nil {
				return usageError("%s", tokenward.ErrorMessage(err))
			}
		}
		if retention != "" {
			if _, err := parseDuration(retention); err != nil {
				return usageError("--retention: %v", err)
			}
		}
		return nil
	}
	m.clientCommand(cmd, true, func(x *call) error {
		project, env, _ := strings.Cut(x.args[0], "/")
		plan, err := x.c.Retire(x.ctx, project, env, retention, true)
		if err != nil {
			return cliError(err)
		}
		if !x.json() {
			printRetirePlan(x.Stdout, plan)
		}
		if dryRun {
			return x.done(plan, "Dry run: nothing changed.")
		}
		done, err := x.c.Retire(x.ctx, project, env, retention, false)
		if err != nil {
			return cliError(err)
		}
		return x.done(done, "Retired %s: revoked %d tokens, narrowed %d, archived %d secrets (restorable until %s).",
			done.Scope, len(done.Revoke), len(done.Narrow), len(done.Secrets), fmtTime(done.PurgeAt))
	})
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().StringVar(&retention, "retention", "", "how long the archived secrets stay restorable, e.g. 30d (default: the server's)")
	return cmd
}

func printRetirePlan(w io.Writer, p *monitor.RetirePlan) {
	fmt.Fprintf(w, "Plan to retire %s:\n", p.Scope)
	fmt.Fprintf(w, "  revoke %d tokens (all their grants are in %s):\n", len(p.Revoke), p.Scope)
	for _, t := range p.Revoke {
		fmt.Fprintf(w, "    %s %s owner=%s\n", t.ID, t.Name, orDash(t.Owner))
	}
	fmt.Fprintf(w, "  narrow %d tokens:\n", len(p.Narrow))
	for _, t := range p.Narrow {
		fmt.Fprintf(w, "    %s %s drop %s keep %s\n", t.ID, t.Name, strings.Join(t.Drop, " "), strings.Join(t.Keep, " "))
	}
	fmt.Fprintf(w, "  archive %d secrets (restorable until %s, then purged):\n", len(p.Secrets), fmtTime(p.PurgeAt))
	for _, s := range p.Secrets {
		fmt.Fprintf(w, "    %s\n", s)
	}
	if len(p.Disable) > 0 {
		fmt.Fprintf(w, "  disable:\n")
		for _, d := range p.Disable {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
}

func (m *Main) newEnvRestoreCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use:               "restore PROJECT/ENV",
		Short:             "Restore a retired environment's archived secrets (within the retention period)",
		Example:           "  tokenward env restore payments/staging",
		Args:              exactArgs(argEnv),
		ValidArgsFunction: m.complete(argEnv),
	}, false, func(x *call) error {
		p := strings.Split(x.args[0], "/")
		n, err := x.c.RestoreEnv(x.ctx, p[0], p[1])
		if err != nil {
			return cliError(err)
		}
		return x.done(nil, "Restored %d secrets of %s. Tokens revoked at retirement stay revoked.", n, x.args[0])
	})
}
