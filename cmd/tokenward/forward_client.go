//go:build tokenward_client

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
)

// The builders of the forwarded commands (forward.go), in place of theirs.
func (m *Main) newInitCommand() *cobra.Command    { return m.forwarded("init") }
func (m *Main) newServerCommand() *cobra.Command  { return m.forwarded("server") }
func (m *Main) newMigrateCommand() *cobra.Command { return m.forwarded("migrate") }
func (m *Main) newBenchCommand() *cobra.Command   { return m.forwarded("bench") }

// buildKind is the build `version` names.
const buildKind = "client"

// forwardedEnv holds the pid of a process that forwarded its command line:
// exec keeps the pid, so a client that finds its own pid there was started
// by itself — a tokenward-server that is a client build too.
const forwardedEnv = "TOKENWARD_FORWARDED_PID"

// forwarded is a top-level command of the full build: its name and Short
// text for help, and everything else — running it, its --help (no flag
// is parsed here), `tokenward help NAME`, shell completion of its
// arguments — done by tokenward-server on the whole command line.
func (m *Main) forwarded(name string) *cobra.Command {
	c := &cobra.Command{
		Use:                name,
		Short:              forwardedCommands[name],
		DisableFlagParsing: true,
		RunE:               func(*cobra.Command, []string) error { return m.forward(name) },
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			m.forward(name) // returns only if it could not exec
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
	}
	c.SetHelpFunc(func(c *cobra.Command, _ []string) {
		// A help function returns no error: Run returns this one, so the
		// process exits non-zero as when the command itself is forwarded.
		m.helpErr = m.forward(name)
		fmt.Fprintf(c.ErrOrStderr(), "%s: %s\n", name, c.Short)
	})
	return c
}

// forward replaces this process with tokenward-server running the same
// command line; it returns only when it cannot.
func (m *Main) forward(name string) error {
	path, err := serverBinary()
	if err != nil {
		return fmt.Errorf("%s needs the full build, %s, which is not installed: %w; `make build` builds bin/tokenward (this client) and bin/%[2]s", name, serverBinaryName, err)
	}
	pid := strconv.Itoa(os.Getpid())
	if m.Getenv(forwardedEnv) == pid {
		return fmt.Errorf("%s: %s is a client build too (it forwarded %s back to itself); install the full build (`make build`: bin/%[2]s)", path, serverBinaryName, name)
	}
	env := append(os.Environ(), forwardedEnv+"="+pid)
	if err := syscall.Exec(path, append([]string{path}, m.args...), env); err != nil { // #nosec G204 -- the full build of this program, with this process's own arguments
		return fmt.Errorf("%s: run %s: %w", name, path, err)
	}
	return nil
}

// serverBinary finds tokenward-server: beside this executable (symbolic
// links resolved, so a link in PATH to an install directory finds the
// install's), else in PATH.
func serverBinary() (string, error) {
	beside := "(this executable's path is unknown)"
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			beside = filepath.Join(filepath.Dir(exe), serverBinaryName)
			if fi, err := os.Stat(beside); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return beside, nil
			}
		}
	}
	path, err := exec.LookPath(serverBinaryName)
	if err != nil {
		return "", fmt.Errorf("looked for %s beside this client and in PATH", beside)
	}
	return path, nil
}
