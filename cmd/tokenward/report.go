package main

import (
	"github.com/spf13/cobra"
)

func (m *Main) newReportCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "report [-o json]",
		Short: "The hygiene report: expiring, overdue rotations, stale and over-privileged tokens, open anomalies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			rep, err := c.Report(cmd.Context())
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return rep.WriteJSON(m.Stdout)
			}
			return rep.WriteText(m.Stdout)
		},
	}
	cf.register(cmd, true)
	return cmd
}
