package main

import (
	"github.com/spf13/cobra"
)

func (m *Main) newReportCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use:     "report [-o json]",
		Short:   "The hygiene report: expiring, overdue rotations, stale and over-privileged tokens, open anomalies",
		Example: "  tokenward report\n  tokenward report -o json > hygiene.json",
		Args:    noArgs,
	}, true, func(x *call) error {
		rep, err := x.c.Report(x.ctx)
		if err != nil {
			return cliError(err)
		}
		if x.json() {
			return rep.WriteJSON(x.Stdout)
		}
		return rep.WriteText(x.Stdout)
	})
}
