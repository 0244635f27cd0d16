package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/api"
)

// newRotateCommand rotates now: one secret (rotate now), or many at once
// (rotate --owner/--tag/--scope/--all), and shows what is in flight.
func (m *Main) newRotateCommand() *cobra.Command {
	var cf clientFlags
	var in api.BulkRotateRequest
	cmd := &cobra.Command{
		Use:   "rotate (--owner X | --tag T | --scope 'P/E/*' | --all) [--dry-run] [--concurrency N]",
		Short: "Rotate many secrets now (incident rotation); see also rotate now, rotate status",
		Long: `rotate with a selector rotates every secret it picks (among those you may
rotate) under each one's policy: the answer to "someone left" or "we had an
incident". It prints the plan first; --dry-run stops there. Secrets without a
policy are skipped. The exit status is 1 when any rotation failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, set := range []bool{in.All, in.Owner != "", in.Tag != "", in.Scope != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				return usageError("give exactly one of --owner, --tag, --scope or --all")
			}
			if in.Concurrency < 0 || in.Concurrency > 32 {
				return usageError("--concurrency must be from 1 to 32")
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			dry := in.DryRun
			in.DryRun = true
			plan, err := c.BulkRotate(cmd.Context(), in)
			if err != nil {
				return cliError(err)
			}
			if cf.output != "json" {
				rows := make([][]string, len(plan))
				for i, it := range plan {
					rows[i] = []string{it.Secret, orDash(it.Rotator), it.Action, orDash(it.Reason)}
				}
				fmt.Fprintln(m.Stdout, "Plan:")
				if err := table(m.Stdout, []string{"SECRET", "ROTATOR", "ACTION", "REASON"}, rows); err != nil {
					return err
				}
			}
			if dry {
				if cf.output == "json" {
					return writeJSON(m.Stdout, plan)
				}
				return nil
			}
			in.DryRun = false
			report, err := c.BulkRotate(cmd.Context(), in)
			if err != nil {
				return cliError(err)
			}
			failed := 0
			rows := make([][]string, len(report))
			for i, it := range report {
				if it.Status == "failed" {
					failed++
				}
				rows[i] = []string{it.Secret, it.Status, orDash(it.RotationID), orDash(it.Reason)}
			}
			if cf.output == "json" {
				if err := writeJSON(m.Stdout, report); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(m.Stdout, "Report:")
				if err := table(m.Stdout, []string{"SECRET", "STATUS", "ROTATION", "REASON"}, rows); err != nil {
					return err
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d rotations failed; their CURRENT values are unchanged", failed, len(report))}
			}
			return nil
		},
	}
	cf.register(cmd, true)
	f := cmd.Flags()
	f.BoolVar(&in.All, "all", false, "every secret you may rotate")
	f.StringVar(&in.Owner, "owner", "", "secrets with this owner")
	f.StringVar(&in.Tag, "tag", "", "secrets with this tag")
	f.StringVar(&in.Scope, "scope", "", "secrets whose PROJECT/ENV/NAME matches this glob, e.g. 'payments/prod/*'")
	f.BoolVar(&in.DryRun, "dry-run", false, "print the plan only")
	f.IntVar(&in.Concurrency, "concurrency", 0, "rotations at once (default: the server's, 4)")
	f.StringVar(&in.Reason, "reason", "", "why, recorded with each rotation")
	cmd.AddCommand(m.newRotateNowCommand(), m.newRotateStatusCommand())
	return cmd
}

func (m *Main) newRotateNowCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "now PROJECT/ENV/NAME",
		Short: "Rotate one secret now under its policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSecretPath(args[0]); err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			r, err := c.RotateNow(cmd.Context(), args[0])
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, r)
			}
			switch r.Step {
			case "revoke":
				fmt.Fprintf(m.Stderr, "Rotated %s: version %d is CURRENT; version %d stays valid as PREVIOUS until %s.\n", r.Path, r.PendingVersion, r.CurrentVersion, fmtTime(r.NextAt))
			case "done":
				fmt.Fprintf(m.Stderr, "Rotated %s: version %d is CURRENT.\n", r.Path, r.PendingVersion)
			case "failed":
				return fmt.Errorf("rotation %s of %s failed; CURRENT is unchanged: %s", r.ID, r.Path, r.Error)
			default:
				fmt.Fprintf(m.Stderr, "Rotation %s of %s is at step %s; it retries at %s: %s\n", r.ID, r.Path, r.Step, fmtTime(r.NextAt), orDash(r.Error))
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newRotateStatusCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show in-flight rotations and recent failures",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			st, err := c.RotationStatus(cmd.Context())
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, st)
			}
			fmt.Fprintln(m.Stdout, "In flight:")
			if err := table(m.Stdout, rotationHeader, rotationRows(st.InFlight)); err != nil {
				return err
			}
			fmt.Fprintln(m.Stdout, "Recent failures:")
			return table(m.Stdout, rotationHeader, rotationRows(st.Failed))
		},
	}
	cf.register(cmd, true)
	return cmd
}

// rollbackRotation is `secret rollback P/E/NAME --to previous`: PREVIOUS
// becomes CURRENT again within the grace of the last rotation.
func (m *Main) rollbackRotation(cmd *cobra.Command, cf *clientFlags, secret string) error {
	c, err := m.client(cf)
	if err != nil {
		return err
	}
	r, err := c.RollbackRotation(cmd.Context(), secret)
	if err != nil {
		return cliError(err)
	}
	if cf.output == "json" {
		return writeJSON(m.Stdout, r)
	}
	fmt.Fprintf(m.Stderr, "Rolled %s back to version %d (PREVIOUS is CURRENT again); version %d will not be revoked.\n", r.Path, r.CurrentVersion, r.PendingVersion)
	return nil
}
