package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/api"
)

// newRotateCommand rotates now: one secret (rotate now), or many at once
// (rotate --owner/--tag/--scope/--all), and shows what is in flight.
func (m *Main) newRotateCommand() *cobra.Command {
	var in api.BulkRotateRequest
	cmd := m.clientCommand(&cobra.Command{
		Use:   "rotate (--owner X | --tag T | --scope 'P/E/*' | --all) [--dry-run] [--concurrency N]",
		Short: "Rotate many secrets now (incident rotation); see also rotate now, rotate status",
		Long: `rotate with a selector rotates every secret it picks (among those you may
rotate) under each one's policy: the answer to "someone left" or "we had an
incident". It prints the plan first; --dry-run stops there. Secrets without a
policy are skipped. The exit status is 1 when any rotation failed.`,
		Example: "  tokenward rotate --owner alice --dry-run\n  tokenward rotate --scope 'payments/prod/*' --reason 'incident 42'",
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
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
			return nil
		},
	}, true, func(x *call) error {
		dry := in.DryRun
		in.DryRun = true
		plan, err := x.c.BulkRotate(x.ctx, in)
		if err != nil {
			return cliError(err)
		}
		if !x.json() {
			rows := make([][]string, len(plan))
			for i, it := range plan {
				rows[i] = []string{it.Secret, orDash(it.Rotator), it.Action, orDash(it.Reason)}
			}
			fmt.Fprintln(x.Stdout, "Plan:")
			if err := x.table([]string{"SECRET", "ROTATOR", "ACTION", "REASON"}, rows); err != nil {
				return err
			}
		}
		if dry {
			if x.json() {
				return writeJSON(x.Stdout, plan)
			}
			return nil
		}
		in.DryRun = false
		report, err := x.c.BulkRotate(x.ctx, in)
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
		if !x.json() {
			fmt.Fprintln(x.Stdout, "Report:")
		}
		if err := x.list(report, []string{"SECRET", "STATUS", "ROTATION", "REASON"}, rows); err != nil {
			return err
		}
		if failed > 0 {
			return &exitError{code: 1, err: fmt.Errorf("%d of %d rotations failed; their CURRENT values are unchanged", failed, len(report))}
		}
		return nil
	})
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
	return m.secretCommand(&cobra.Command{
		Use:     "now PROJECT/ENV/NAME",
		Short:   "Rotate one secret now under its policy",
		Example: "  tokenward rotate now payments/prod/STRIPE_KEY",
	}, true, func(x *call, _ []string) error {
		r, err := x.c.RotateNow(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		switch {
		case x.json():
			return writeJSON(x.Stdout, r)
		case r.Step == "revoke":
			fmt.Fprintf(x.Stderr, "Rotated %s: version %d is CURRENT; version %d stays valid as PREVIOUS until %s.\n", r.Path, r.PendingVersion, r.CurrentVersion, fmtTime(r.NextAt))
		case r.Step == "done":
			fmt.Fprintf(x.Stderr, "Rotated %s: version %d is CURRENT.\n", r.Path, r.PendingVersion)
		case r.Step == "failed":
			return fmt.Errorf("rotation %s of %s failed; CURRENT is unchanged: %s", r.ID, r.Path, r.Error)
		default:
			fmt.Fprintf(x.Stderr, "Rotation %s of %s is at step %s; it retries at %s: %s\n", r.ID, r.Path, r.Step, fmtTime(r.NextAt), orDash(r.Error))
			return &exitError{code: 1}
		}
		return nil
	})
}

func (m *Main) newRotateStatusCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "status", Short: "Show in-flight rotations and recent failures", Example: "  tokenward rotate status", Args: noArgs,
	}, true, func(x *call) error {
		st, err := x.c.RotationStatus(x.ctx)
		if err != nil {
			return cliError(err)
		}
		if x.json() {
			return writeJSON(x.Stdout, st)
		}
		fmt.Fprintln(x.Stdout, "In flight:")
		if err := x.table(rotationHeader, rotationRows(st.InFlight)); err != nil {
			return err
		}
		fmt.Fprintln(x.Stdout, "Recent failures:")
		return x.table(rotationHeader, rotationRows(st.Failed))
	})
}
