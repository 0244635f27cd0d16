package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// timeNow is the CLI's clock for display decisions (expired or not).
var timeNow = time.Now

func (m *Main) newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage encryption keys"}
	var cf clientFlags
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Add a master key version and rewrap every data key under it, online",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			id, err := c.RotateKeys(cmd.Context())
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, map[string]any{"master_key_id": id})
			}
			fmt.Fprintf(m.Stdout, "Master key is now version %d; data keys rewrapped.\n", id)
			return nil
		},
	}
	cf.register(rotate, true)
	cmd.AddCommand(rotate)
	return cmd
}
