package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Main holds the process's streams and environment so tests can run the CLI
// in process as well as through the real binary.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// NewMain returns a Main on the process's own streams and environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Run parses args and runs the command they name.
func (m *Main) Run(ctx context.Context, args []string) error {
	root := m.rootCommand()
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func (m *Main) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "tokenward",
		Short:         "API-token lifecycle manager for CI/CD",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(m.Stdin)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	root.SetFlagErrorFunc(flagError)
	root.CompletionOptions.DisableDefaultCmd = true // ours has examples and exit codes
	// Each subcommand is listed here explicitly (no init() registration).
	root.AddCommand(
		m.newInitCommand(),
		m.newServerCommand(),
		m.newProjectCommand(),
		m.newEnvCommand(),
		m.newSecretCommand(),
		m.newTokenCommand(),
		m.newKeysCommand(),
		m.newAuditCommand(),
		m.newRunCommand(), m.newExportCommand(), m.newCheckCommand(), m.newApplyCommand(),
		m.newBindingCommand(), m.newLoginCommand(),
		m.newAnomaliesCommand(), m.newReportCommand(), m.newEventsCommand(),
		newScanCommand(m), newHookCommand(m),
		m.newRotationCommand(),
		m.newGatewayCmd(),
		m.newRotateCommand(),
		m.newDynamicCommand(), m.newLeaseCommand(),
		m.newMigrateCommand(),
		m.newBenchCommand(),
		newCompletionCommand(),
	)
	m.addVersion(root)
	return root
}

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exitCode returns the process exit code for err: an exitError's own code,
// else 1.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
