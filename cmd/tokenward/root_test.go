//go:build !tokenward_client

package main

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

// rootCommand is the whole command tree.
func (m *Main) rootCommand() *cobra.Command {
	root, _ := m.rootFor(nil)
	return root
}

// TestTopCommandNames: the names topCommands lists for each top-level
// command are the built command's name and aliases, and every command of
// the tree is listed (rootFor builds only the one its arguments name).
// The client build's forwarded commands (forward.go) are top-level
// commands with the Short text the client's help shows for them, and no
// aliases (the client's stand-ins answer to the name alone).
func TestTopCommandNames(t *testing.T) {
	m := NewMain()
	listed := map[string]bool{}
	for _, top := range m.topCommands() {
		c := top.build()
		if want := append([]string{c.Name()}, c.Aliases...); !slices.Equal(top.names, want) {
			t.Errorf("topCommands lists %v; the command answers to %v", top.names, want)
		}
		listed[c.Name()] = true
		if short, ok := forwardedCommands[c.Name()]; ok {
			if short != c.Short {
				t.Errorf("forwardedCommands[%q] = %q; the command's Short is %q", c.Name(), short, c.Short)
			}
			if len(c.Aliases) > 0 {
				t.Errorf("forwarded command %s has aliases %v; the client's stand-in answers to its name alone", c.Name(), c.Aliases)
			}
		}
	}
	for name := range forwardedCommands {
		if !listed[name] {
			t.Errorf("forwardedCommands names %s, which is not a top-level command", name)
		}
	}
	for _, c := range m.rootCommand().Commands() {
		if c.Name() != "version" && !listed[c.Name()] {
			t.Errorf("command %s is not in topCommands", c.Name())
		}
	}
}

// TestRootForBuildsOnlyTheNamedCommand: arguments that name a top-level
// command get a tree of that one (and version); anything else, all.
func TestRootForBuildsOnlyTheNamedCommand(t *testing.T) {
	all := len(NewMain().rootCommand().Commands())
	for _, tc := range []struct {
		args []string
		want []string // nil: every command
	}{
		{[]string{"secret", "get", "p/e/K"}, []string{"secret", "version"}},
		{[]string{"--help", "run", "--", "make"}, []string{"run", "version"}},
		{[]string{"server", "--dev"}, []string{"server", "version"}},
		{[]string{"version"}, nil},
		{[]string{"help", "secret"}, nil},
		{[]string{"completion", "bash"}, nil},
		{[]string{"scret", "get"}, nil}, // unknown: cobra's suggestions need them all
		{[]string{"--", "secret"}, nil},
		{nil, nil},
	} {
		var got []string
		root, _ := NewMain().rootFor(tc.args)
		for _, c := range root.Commands() {
			got = append(got, c.Name())
		}
		if tc.want == nil && len(got) != all {
			t.Errorf("%q: got %d commands; want all %d", tc.args, len(got), all)
		}
		if tc.want != nil && !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v; want %v", tc.args, got, tc.want)
		}
	}
}

// TestQuickCommands: Run leaves SIGINT and SIGTERM their default action
// (the process ends where it stands) only for the top-level commands whose
// every command is a request or two with nothing to clean up; the rest
// cancel their context and stop gracefully (TestGracefulShutdown; `run`
// forwards them to its child, the pipelines scripts' `pl signal`).
func TestQuickCommands(t *testing.T) {
	quick := map[string]bool{"project": true, "env": true, "secret": true, "token": true, "keys": true, "binding": true, "anomalies": true, "lease": true}
	for _, top := range NewMain().topCommands() {
		if top.quick != quick[top.names[0]] {
			t.Errorf("%s: quick is %v; want %v", top.names[0], top.quick, quick[top.names[0]])
		}
	}
	for _, tc := range []struct {
		args  []string
		quick bool
	}{
		{[]string{"secret", "get", "p/e/K"}, true},
		{[]string{"token", "list", "-o", "json"}, true},
		{[]string{"run", "--", "make"}, false},
		{[]string{"events", "tail"}, false},
		{[]string{"audit", "export", "--output", "f"}, false},
		{[]string{"apply", "-f", "x.yaml"}, false},
		{[]string{"version"}, false},
		{[]string{"--help"}, false},
		{nil, false},
	} {
		if _, top := NewMain().rootFor(tc.args); top.quick != tc.quick {
			t.Errorf("%q: quick is %v; want %v", tc.args, top.quick, tc.quick)
		}
	}
}
