package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (m *Main) newAnomaliesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "anomalies", Short: "List and acknowledge anomalies (suspicious token use)"}
	var all bool
	var limit int
	list := m.clientCommand(&cobra.Command{
		Use:     "list [--all]",
		Short:   "List open anomalies (with --all, acknowledged ones too), newest first",
		Example: "  tokenward anomalies list\n  tokenward anomalies list --all --limit 50 -o json",
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usageError("--limit must be 0 (no limit) or more")
			}
			return nil
		},
	}, true, func(x *call) error {
		list, err := x.c.Anomalies(x.ctx, all, limit)
		if err != nil {
			return cliError(err)
		}
		rows := make([][]string, len(list))
		for i, a := range list {
			state := "open"
			if !a.Open() {
				state = "acked " + fmtTime(a.AckedAt)
			}
			tok := a.TokenID
			if a.TokenName != "" {
				tok += " (" + a.TokenName + ")"
			}
			rows[i] = []string{a.ID, fmtTime(a.Time), string(a.Severity), string(a.Rule), orDash(tok), orDash(a.SourceIP), state, oneLine(a.Explanation)}
		}
		return x.list(list, []string{"ID", "TIME", "SEVERITY", "RULE", "TOKEN", "SOURCE", "STATE", "EXPLANATION"}, rows)
	})
	list.Flags().BoolVar(&all, "all", false, "include acknowledged anomalies")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	ack := m.clientCommand(&cobra.Command{
		Use:     "ack ID...",
		Short:   "Acknowledge anomalies: they leave the report's open list",
		Example: "  tokenward anomalies ack anm_5f2c0e1a9b3d7c48",
		Args:    minArgs(argument{"ID", "anm_5f2c0e1a9b3d7c48", 0}),
	}, false, func(x *call) error {
		for _, id := range x.args {
			a, err := x.c.AckAnomaly(x.ctx, id)
			if err != nil {
				return cliError(err)
			}
			fmt.Fprintf(x.Stderr, "Acknowledged %s (%s).\n", a.ID, a.Rule)
		}
		return nil
	})
	cmd.AddCommand(list, ack)
	return cmd
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
