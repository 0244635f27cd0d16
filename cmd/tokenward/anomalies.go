package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (m *Main) newAnomaliesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "anomalies", Short: "List and acknowledge anomalies (suspicious token use)"}
	var lf clientFlags
	var all bool
	var limit int
	list := &cobra.Command{
		Use:   "list [--all]",
		Short: "List open anomalies (with --all, acknowledged ones too), newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usageError("--limit must be 0 (no limit) or more")
			}
			c, err := m.client(&lf)
			if err != nil {
				return err
			}
			list, err := c.Anomalies(cmd.Context(), all, limit)
			if err != nil {
				return cliError(err)
			}
			if lf.output == "json" {
				return writeJSON(m.Stdout, list)
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
			return table(m.Stdout, []string{"ID", "TIME", "SEVERITY", "RULE", "TOKEN", "SOURCE", "STATE", "EXPLANATION"}, rows)
		},
	}
	lf.register(list, true)
	list.Flags().BoolVar(&all, "all", false, "include acknowledged anomalies")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	var af clientFlags
	ack := &cobra.Command{
		Use:   "ack ID...",
		Short: "Acknowledge anomalies: they leave the report's open list",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&af)
			if err != nil {
				return err
			}
			for _, id := range args {
				a, err := c.AckAnomaly(cmd.Context(), id)
				if err != nil {
					return cliError(err)
				}
				fmt.Fprintf(m.Stderr, "Acknowledged %s (%s).\n", a.ID, a.Rule)
			}
			return nil
		},
	}
	af.register(ack, false)
	cmd.AddCommand(list, ack)
	return cmd
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
