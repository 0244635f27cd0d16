package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Main holds the process's streams and environment so tests can run the CLI
// in process as well as through the real binary.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	// Signals makes Run cancel the command's context on SIGINT or
	// SIGTERM, for the commands that stop gracefully (main sets it; tests
	// running the CLI in process do not).
	Signals bool

	args    []string // Run's, which a forwarded command passes on whole (forward.go)
	helpErr error    // why a forwarded command's help could not be shown (forward_client.go)
}

// NewMain returns a Main on the process's own streams and environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Run parses args and runs the command they name.
func (m *Main) Run(ctx context.Context, args []string) error {
	m.args = args
	root, top := m.rootFor(args)
	if m.Signals && !top.quick {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return err
	}
	return m.helpErr
}

// rootFor builds the command tree for args: when they name a top-level
// command, only that one (building every command and its flags was a
// tenth of a short command's process, docs/benchmarks.md), which it
// returns too; otherwise — no command, help, completion, an unknown name —
// all of them, and a zero topCommand.
func (m *Main) rootFor(args []string) (*cobra.Command, topCommand) {
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
	tops := m.topCommands()
	t, ok := namedTop(tops, args)
	if ok {
		root.AddCommand(t.build())
	} else {
		for _, t := range tops {
			root.AddCommand(t.build())
		}
	}
	m.addVersion(root)
	return root, t
}

// topCommand is a top-level command: the names it answers to (its name,
// then its aliases) and how to build it. TestTopCommandNames keeps the
// names those of the built command.
type topCommand struct {
	names []string
	build func() *cobra.Command
	all   bool // needs the whole tree (completion scripts walk it)
	// quick: each of its commands makes a request or two and leaves
	// nothing behind to clean up, so SIGINT and SIGTERM may end it where
	// it stands, as their default action does, and Run installs no
	// handler (os/signal starts a goroutine locked to a thread of its
	// own: about a tenth of `secret get`, BenchmarkCLISecretGet).
	// Commands that stream, wait, write files or run a child stop
	// gracefully instead.
	quick bool
}

// topCommands lists each top-level command explicitly (no init()
// registration), in the order help lists them.
func (m *Main) topCommands() []topCommand {
	return []topCommand{
		{names: []string{"init"}, build: m.newInitCommand},
		{names: []string{"server"}, build: m.newServerCommand},
		{names: []string{"project"}, build: m.newProjectCommand, quick: true},
		{names: []string{"env"}, build: m.newEnvCommand, quick: true},
		{names: []string{"secret"}, build: m.newSecretCommand, quick: true},
		{names: []string{"token"}, build: m.newTokenCommand, quick: true},
		{names: []string{"keys"}, build: m.newKeysCommand, quick: true},
		{names: []string{"audit"}, build: m.newAuditCommand},
		{names: []string{"run"}, build: m.newRunCommand},
		{names: []string{"export"}, build: m.newExportCommand},
		{names: []string{"check"}, build: m.newCheckCommand},
		{names: []string{"apply"}, build: m.newApplyCommand},
		{names: []string{"binding"}, build: m.newBindingCommand, quick: true},
		{names: []string{"login"}, build: m.newLoginCommand},
		{names: []string{"anomalies"}, build: m.newAnomaliesCommand, quick: true},
		{names: []string{"report"}, build: m.newReportCommand},
		{names: []string{"events"}, build: m.newEventsCommand},
		{names: []string{"scan"}, build: func() *cobra.Command { return newScanCommand(m) }},
		{names: []string{"hook"}, build: func() *cobra.Command { return newHookCommand(m) }},
		{names: []string{"rotation"}, build: m.newRotationCommand},
		{names: []string{"gateway"}, build: m.newGatewayCmd},
		{names: []string{"rotate"}, build: m.newRotateCommand},
		{names: []string{"dynamic"}, build: m.newDynamicCommand},
		{names: []string{"lease"}, build: m.newLeaseCommand, quick: true},
		{names: []string{"migrate"}, build: m.newMigrateCommand},
		{names: []string{"bench"}, build: m.newBenchCommand},
		{names: []string{"completion"}, build: newCompletionCommand, all: true},
	}
}

// namedTop finds the top-level command args name: their first argument
// that is not a flag (the root has no flag that takes a value).
func namedTop(tops []topCommand, args []string) (topCommand, bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		for _, t := range tops {
			if slices.Contains(t.names, a) && !t.all {
				return t, true
			}
		}
		break
	}
	return topCommand{}, false
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
