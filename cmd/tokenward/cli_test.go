//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// runCLI runs the CLI in process with env as its whole environment and
// returns stdout, stderr and the exit code main would use.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	code := 0
	if err := m.Run(context.Background(), args); err != nil {
		code = exitCode(err)
		errOut.WriteString("tokenward: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), code
}

// startInProcessServer serves the API from this test process (store, engine
// and HTTP handler, no optional features) and returns the environment a
// client needs: TOKENWARD_ADDR and an admin TOKENWARD_TOKEN.
func startInProcessServer(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	m := &Main{Getenv: func(string) string { return "" }}
	dir := filepath.Join(t.TempDir(), "data")
	token, err := m.initDataDir(ctx, dir, storageConfig{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := m.loadMasterKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	db := sqlite.NewDB(filepath.Join(dir, dbFileName))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := core.New(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(c.Close)
	srv := httptest.NewServer(httpapi.NewServer(c, nil))
	t.Cleanup(srv.Close)
	return map[string]string{"TOKENWARD_ADDR": srv.URL, "TOKENWARD_TOKEN": token}
}

// TestEveryCommandHasAnExample walks the command tree: every command that
// runs shows an Example in its --help, and the examples name only
// commands and flags that exist.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := NewMain().rootCommand()
	invocation := regexp.MustCompile(`tokenward ([^|;&)>]*)`)
	var walk func(*cobra.Command) int
	walk = func(c *cobra.Command) int {
		n := 0
		if c.Runnable() && !c.Hidden {
			n++
			if strings.TrimSpace(c.Example) == "" {
				t.Errorf("%s: no Example in its --help", c.CommandPath())
			}
			runs := false
			for _, m := range invocation.FindAllStringSubmatch(c.Example, -1) {
				runs = checkExample(t, root, strings.Fields(m[1])) == c || runs
			}
			if !runs {
				t.Errorf("%s: no example runs it", c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			n += walk(sub)
		}
		return n
	}
	if n := walk(root); n < 40 {
		t.Errorf("walked %d runnable commands; want at least 40 (is the tree built?)", n)
	}
}

// checkExample fails if args (one tokenward invocation in an Example)
// names a flag its command does not have; it returns the command.
func checkExample(t *testing.T, root *cobra.Command, args []string) *cobra.Command {
	t.Helper()
	c, _, err := root.Find(args)
	if err != nil {
		t.Errorf("example %q: %v", strings.Join(args, " "), err)
		return nil
	}
	for _, a := range args {
		if a == "--" {
			break // the rest is run's child command
		}
		name, _, _ := strings.Cut(a, "=")
		switch {
		case strings.HasPrefix(name, "--"):
			if c.Flags().Lookup(name[2:]) == nil {
				t.Errorf("%s: example uses %s: no such flag", c.CommandPath(), name)
			}
		case strings.HasPrefix(name, "-") && len(name) == 2:
			if c.Flags().ShorthandLookup(name[1:]) == nil {
				t.Errorf("%s: example uses %s: no such flag", c.CommandPath(), name)
			}
		}
	}
	return c
}

// TestUsageErrors: a bad invocation exits 2 naming the argument or flag at
// fault and how to fix it, before any server is asked.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"secret", "get"}, "missing argument PROJECT/ENV/NAME (e.g. payments/prod/STRIPE_KEY)"},
		{[]string{"secret", "get", "payments/prod"}, `PROJECT/ENV/NAME: want 3 non-empty parts separated by /, got 2 parts (e.g. payments/prod/STRIPE_KEY`},
		{[]string{"secret", "list", "payments//"}, `PROJECT/ENV: want 2 non-empty parts separated by /, got 3 parts`},
		{[]string{"secret", "get", "a/b/c", "d"}, `unexpected argument (not repeated, as it may be a value; usage: tokenward secret get PROJECT/ENV/NAME; see --help)`},
		{[]string{"env", "retire"}, "missing argument PROJECT/ENV (e.g. payments/prod)"},
		{[]string{"project", "show"}, "missing argument PROJECT (e.g. payments)"},
		{[]string{"binding", "show"}, "missing argument NAME (e.g. payments-deploy)"},
		{[]string{"anomalies", "ack"}, "missing argument ID (e.g. anm_"},
		{[]string{"token", "list", "extra"}, `unexpected argument (not repeated, as it may be a value; usage: tokenward token list; see --help)`},
		{[]string{"token", "create", "--name", "bot", "--grant", "read:a/b/c", "--ttl", "3x"}, `--ttl: invalid duration "3x" (use e.g. 15m, 24h, 30d)`},
		{[]string{"token", "create", "--name", "bot"}, "at least one --grant is required, e.g. --grant 'read:payments/prod/*'"},
		{[]string{"env", "retire", "payments/dev", "--retention", "soon"}, `--retention: invalid duration "soon"`},
		{[]string{"secret", "set", "a/b/c", "--expires", "tomorrow"}, `--expires: invalid date "tomorrow" (use YYYY-MM-DD or RFC 3339)`},
		{[]string{"project", "list", "-o", "xml"}, `invalid argument "xml" for "-o, --output" flag: want table or json (see tokenward project list --help)`},
		{[]string{"check", "-o", "yaml"}, `want text, json or junit`},
		{[]string{"rotation", "set", "a/b/c"}, "--rotator is required"},
		{[]string{"token", "list", "--bogus"}, "unknown flag: --bogus (see tokenward token list --help)"},
		{[]string{"completion", "tcsh"}, "want one argument: bash, zsh or fish"},
		{[]string{"run", "--env", "payments/prod"}, "missing argument COMMAND"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, nil, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("got exit %d, stderr %q; want exit 2 and %q", code, errOut, tt.want)
			}
		})
	}
}

// TestCompletion completes PROJECT, PROJECT/ENV and PROJECT/ENV/NAME
// arguments from a real server, through cobra's hidden __complete.
func TestCompletion(t *testing.T) {
	env := startInProcessServer(t)
	for _, args := range [][]string{
		{"project", "create", "payments", "--envs", "dev,prod"},
		{"project", "create", "billing", "--envs", "prod"},
	} {
		if _, errOut, code := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	var out, errOut bytes.Buffer
	m := &Main{Stdin: strings.NewReader("sk_test_value\n"), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	if err := m.Run(context.Background(), []string{"secret", "set", "payments/prod/STRIPE_KEY"}); err != nil {
		t.Fatalf("secret set: %v", err)
	}
	noToken := map[string]string{"TOKENWARD_ADDR": env["TOKENWARD_ADDR"]}
	badToken := map[string]string{"TOKENWARD_ADDR": env["TOKENWARD_ADDR"], "TOKENWARD_TOKEN": "twa_notavalidtoken"}
	down := map[string]string{"TOKENWARD_ADDR": "http://127.0.0.1:1", "TOKENWARD_TOKEN": env["TOKENWARD_TOKEN"]}
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string // the completions, one a line, then ":" and the directive
	}{
		{env, []string{"secret", "get", "pay"}, "payments/\n:6"},
		{env, []string{"secret", "get", ""}, "billing/\npayments/\n:6"},
		{env, []string{"secret", "get", "payments/p"}, "payments/prod/\n:6"},
		{env, []string{"secret", "get", "payments/prod/S"}, "payments/prod/STRIPE_KEY\n:4"},
		{env, []string{"secret", "list", "payments/"}, "payments/dev\npayments/prod\n:4"},
		{env, []string{"project", "show", "b"}, "billing\n:4"},
		{env, []string{"rotation", "set", "payments/prod/"}, "payments/prod/STRIPE_KEY\n:4"},
		{env, []string{"secret", "get", "payments/prod/STRIPE_KEY", ""}, ":4"},
		{env, []string{"secret", "get", "nope/"}, ":4"},
		{noToken, []string{"secret", "get", "pay"}, ":4"},
		{badToken, []string{"secret", "get", "pay"}, ":4"},
		{down, []string{"secret", "get", "pay"}, ":4"},
		{env, []string{"completion", ""}, "bash\nzsh\nfish\n:4"},
		{env, []string{"project", "list", "-o", ""}, "table\njson\n:4"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, tt.env, append([]string{"__complete"}, tt.args...)...)
			if code != 0 || strings.TrimSpace(out) != tt.want {
				t.Errorf("got exit %d, stdout %q; want %q", code, out, tt.want)
			}
			if tok := env["TOKENWARD_TOKEN"]; strings.Contains(out+errOut, tok) {
				t.Errorf("the completion printed the token")
			}
		})
	}
}

// TestCompletionScripts: each shell gets cobra's script for tokenward.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_tokenward", "zsh": "#compdef tokenward", "fish": "complete -c tokenward"} {
		out, errOut, code := runCLI(t, nil, "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: got exit %d (%s) and no %q in %d bytes", shell, code, errOut, want, len(out))
		}
	}
}
