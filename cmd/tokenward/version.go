package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/buildinfo"
)

// addVersion gives root a version subcommand and a --version flag, both
// printing the build described by internal/buildinfo.
func (m *Main) addVersion(root *cobra.Command) {
	info := buildinfo.Get()
	root.Version = versionText(info)
	root.SetVersionTemplate("{{.Version}}")
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "text":
				_, err := io.WriteString(m.Stdout, versionText(info))
				return err
			case "json":
				return writeJSON(m.Stdout, info)
			}
			return usageError("--output must be text or json")
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	root.AddCommand(cmd)
}

func versionText(info buildinfo.Info) string {
	commit := orDash(info.Commit)
	if info.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("tokenward %s\ncommit: %s\ngo:     %s\nbuilt:  %s\n",
		info.Version, commit, info.GoVersion, orDash(info.Date))
}
