package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

type retireFlags struct {
	cf        clientFlags
	dryRun    bool
	retention string
}

func (f *retireFlags) register(cmd *cobra.Command) {
	f.cf.register(cmd, true)
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().StringVar(&f.retention, "retention", "", "how long the archived secrets stay restorable, e.g. 30d (default: the server's)")
}

// retire prints the plan first (always), then carries it out unless
// --dry-run.
func (m *Main) retire(ctx context.Context, f *retireFlags, project, env string) error {
	if f.retention != "" {
		if _, err := parseDuration(f.retention); err != nil {
			return usageError("--retention: %v", err)
		}
	}
	c, err := m.client(&f.cf)
	if err != nil {
		return err
	}
	plan, err := c.Retire(ctx, project, env, f.retention, true)
	if err != nil {
		return cliError(err)
	}
	if f.cf.output != "json" {
		printRetirePlan(m.Stdout, plan)
	}
	if f.dryRun {
		if f.cf.output == "json" {
			return writeJSON(m.Stdout, plan)
		}
		fmt.Fprintln(m.Stderr, "Dry run: nothing changed.")
		return nil
	}
	done, err := c.Retire(ctx, project, env, f.retention, false)
	if err != nil {
		return cliError(err)
	}
	if f.cf.output == "json" {
		return writeJSON(m.Stdout, done)
	}
	fmt.Fprintf(m.Stderr, "Retired %s: revoked %d tokens, narrowed %d, archived %d secrets (restorable until %s).\n",
		done.Scope, len(done.Revoke), len(done.Narrow), len(done.Secrets), fmtTime(done.PurgeAt))
	return nil
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

func (m *Main) newEnvRetireCommand() *cobra.Command {
	var f retireFlags
	cmd := &cobra.Command{
		Use:   "retire PROJECT/ENV [--dry-run] [--retention 30d]",
		Short: "Retire an environment: revoke or narrow its tokens, archive its secrets (plan printed first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts, err := splitPath(args[0], 2)
			if err != nil {
				return err
			}
			return m.retire(cmd.Context(), &f, parts[0], parts[1])
		},
	}
	f.register(cmd)
	return cmd
}

func (m *Main) newProjectRetireCommand() *cobra.Command {
	var f retireFlags
	cmd := &cobra.Command{
		Use:   "retire PROJECT [--dry-run] [--retention 30d]",
		Short: "Retire a project: every environment, as env retire does (plan printed first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tokenward.ValidateProjectName(args[0]); err != nil {
				return usageError("%s", tokenward.ErrorMessage(err))
			}
			return m.retire(cmd.Context(), &f, args[0], "")
		},
	}
	f.register(cmd)
	return cmd
}

func (m *Main) newEnvRestoreCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "restore PROJECT/ENV",
		Short: "Restore a retired environment's archived secrets (within the retention period)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts, err := splitPath(args[0], 2)
			if err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			n, err := c.RestoreEnv(cmd.Context(), parts[0], parts[1])
			if err != nil {
				return cliError(err)
			}
			fmt.Fprintf(m.Stderr, "Restored %d secrets of %s. Tokens revoked at retirement stay revoked.\n", n, args[0])
			return nil
		},
	}
	cf.register(cmd, false)
	return cmd
}
