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
		Use:     "version",
		Short:   "Print the version, commit, Go version and build date",
		Example: "  tokenward version\n  tokenward version -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "json" {
				return writeJSON(m.Stdout, info)
			}
			_, err := io.WriteString(m.Stdout, versionText(info))
			return err
		},
	}
	outputFlag(cmd, &output, "text", "json")
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
