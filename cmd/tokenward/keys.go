package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// timeNow is the CLI's clock for display decisions (expired or not).
var timeNow = time.Now

func (m *Main) newKeysCommand() *cobra.Command {
	return group("keys", "Manage encryption keys", m.clientCommand(&cobra.Command{
		Use:     "rotate",
		Short:   "Add a master key version and rewrap every data key under it, online",
		Example: "  tokenward keys rotate",
		Args:    noArgs,
	}, true, func(x *call) error {
		id, err := x.c.RotateKeys(x.ctx)
		if err != nil {
			return cliError(err)
		}
		if x.json() {
			return writeJSON(x.Stdout, map[string]any{"master_key_id": id})
		}
		fmt.Fprintf(x.Stdout, "Master key is now version %d; data keys rewrapped.\n", id)
		return nil
	}))
}
