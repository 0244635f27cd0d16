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
	info := versionInfo{buildinfo.Get(), buildKind}
	root.Version = versionText(info)
	root.SetVersionTemplate("{{.Version}}")
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit, Go version, build date and which build this is",
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

// versionInfo is what version prints: the build and which of the two
// builds this is (buildKind: "full", or "client" for -tags
// tokenward_client, forward.go).
type versionInfo struct {
	buildinfo.Info
	Build string `json:"build"`
}

func versionText(info versionInfo) string {
	commit := orDash(info.Commit)
	if info.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("tokenward %s\ncommit: %s\ngo:     %s\nbuilt:  %s\nbuild:  %s\n",
		info.Version, commit, info.GoVersion, orDash(info.Date), info.Build)
}
