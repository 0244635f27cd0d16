package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward"
)

// argument is a positional argument as Use names it, with an example for
// error messages; parts > 0 makes it a PROJECT[/ENV[/NAME]] path that is
// checked here and completed from the server.
type argument struct {
	name, example string
	parts         int
}

var (
	argProject = argument{"PROJECT", "payments", 1}
	argEnv     = argument{"PROJECT/ENV", "payments/prod", 2}
	argSecret  = argument{"PROJECT/ENV/NAME", "payments/prod/STRIPE_KEY", 3}
)

// exactArgs wants exactly the arguments given, each checked.
func exactArgs(want ...argument) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(want) {
			a := want[len(args)]
			return usageError("missing argument %s (e.g. %s)", a.name, a.example)
		}
		if len(args) > len(want) {
			return unexpectedArg(cmd, args[len(want)])
		}
		for i, a := range want {
			if a.parts > 1 {
				if _, err := splitPath(args[i], a.parts); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// minArgs wants a at least once.
func minArgs(a argument) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageError("missing argument %s (e.g. %s)", a.name, a.example)
		}
		return nil
	}
}

// noArgs refuses every argument.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return unexpectedArg(cmd, args[0])
	}
	return nil
}

func unexpectedArg(cmd *cobra.Command, arg string) error {
	if looksLikeToken(arg) {
		// Not repeated: stderr lands in CI logs.
		return usageError("unexpected argument: a tokenward token (a token is never a command-line value: set TOKENWARD_TOKEN or use --token-file; usage: %s %s; see --help)", cmd.Parent().CommandPath(), cmd.Use)
	}
	// Not repeated either: the extra argument is often a value (secret set
	// PATH VALUE), and stderr lands in CI logs.
	return usageError("unexpected argument (not repeated, as it may be a value; usage: %s %s; see --help)", cmd.Parent().CommandPath(), cmd.Use)
}

// looksLikeToken reports whether s starts like a tokenward token, also a
// mistyped or truncated one, which an error must not repeat either.
func looksLikeToken(s string) bool {
	return strings.HasPrefix(s, tokenward.PrefixAdmin) || strings.HasPrefix(s, tokenward.PrefixService) || strings.HasPrefix(s, tokenward.PrefixJIT)
}

// splitPath splits "a/b" or "a/b/c" into n parts, checking each. A refusal
// says what was wrong without the text: what was typed where the path
// belongs is often a value.
func splitPath(s string, n int) ([]string, error) {
	a := [...]argument{2: argEnv, 3: argSecret}[n]
	parts := strings.Split(s, "/")
	var got string
	switch {
	case len(parts) == 1:
		got = "1 part"
	case len(parts) != n:
		got = fmt.Sprintf("%d parts", len(parts))
	case slices.Contains(parts, ""):
		got = "an empty part"
	default:
		return parts, nil
	}
	return nil, usageError("%s: want %d non-empty parts separated by /, got %s (e.g. %s; the argument is not repeated, as it may be a value)", a.name, n, got, a.example)
}

// complete completes a PROJECT, PROJECT/ENV or PROJECT/ENV/NAME argument
// with the names the server (TOKENWARD_ADDR, TOKENWARD_TOKEN or
// --token-file) shows the token. On any error it completes nothing, and
// says nothing: a completion never prints an error, let alone a token.
func (m *Main) complete(a argument) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		none := cobra.ShellCompDirectiveNoFileComp
		if len(args) > 0 {
			return nil, none
		}
		tokenFile, _ := cmd.Flags().GetString("token-file")
		c, err := m.client(&clientFlags{tokenFile: tokenFile})
		if err != nil {
			return nil, none
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		typed := strings.Split(toComplete, "/")
		var names []string
		switch {
		case len(typed) == 1:
			ps, err := c.Projects(ctx)
			if err != nil {
				return nil, none
			}
			for _, p := range ps {
				names = append(names, p.Name)
			}
		case len(typed) == 2 && a.parts > 1:
			p, err := c.Project(ctx, typed[0])
			if err != nil {
				return nil, none
			}
			for _, e := range p.Envs {
				names = append(names, typed[0]+"/"+e)
			}
		case len(typed) == 3 && a.parts > 2:
			ss, err := c.Secrets(ctx, typed[0], typed[1])
			if err != nil {
				return nil, none
			}
			for _, s := range ss {
				names = append(names, s.Path())
			}
		}
		var out []cobra.Completion
		more := len(typed) < a.parts
		for _, n := range names {
			if more {
				n += "/"
			}
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		if more {
			none |= cobra.ShellCompDirectiveNoSpace
		}
		return out, none
	}
}

// newCompletionCommand prints the shell completion script.
func newCompletionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script (completes project, environment and secret names from the server)",
		Long: `completion prints a script for your shell. Once installed, TAB completes commands and flags,
and PROJECT, PROJECT/ENV and PROJECT/ENV/NAME arguments from the server at TOKENWARD_ADDR with
TOKENWARD_TOKEN (nothing when either is missing). See the README for where each shell wants it.`,
		Example: `  source <(tokenward completion bash)
  tokenward completion zsh > "${fpath[1]}/_tokenward"
  tokenward completion fish > ~/.config/fish/completions/tokenward.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh" && args[0] != "fish") {
				return usageError("want one argument: bash, zsh or fish (e.g. tokenward completion bash)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, w := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			}
			return root.GenFishCompletion(w, true)
		},
	}
}

// flagError is the root's flag error handler: a bad flag or flag value
// is a usage error (exit 2) that points at --help.
func flagError(cmd *cobra.Command, err error) error {
	return usageError("%s (see %s --help)", flagErrorText(err), cmd.CommandPath())
}

// flagErrorText is err's message naming at most the flag: pflag's own
// repeats the whole argument the flag came in (-xVALUE, ---VALUE), which
// may hold a value, and stderr lands in CI logs.
func flagErrorText(err error) string {
	var (
		unknown  *pflag.NotExistError
		needsArg *pflag.ValueRequiredError
		syntax   *pflag.InvalidSyntaxError
		invalid  *pflag.InvalidValueError
	)
	switch {
	case errors.As(err, &invalid) && !echoable(invalid.GetValue()):
		// A long value may be a secret given to the wrong flag: named by
		// its flag only, in the cause too (strconv repeats it).
		v, f := invalid.GetValue(), invalid.GetFlag()
		return fmt.Sprintf("invalid argument for --%s (not repeated, as it may be a value): %s", f.Name, strings.ReplaceAll(errors.Unwrap(invalid).Error(), v, "…"))
	case errors.As(err, &unknown) && unknown.GetSpecifiedShortnames() != "":
		return fmt.Sprintf("unknown shorthand flag: %s", shorthand(unknown.GetSpecifiedName()))
	case errors.As(err, &unknown):
		if name := unknown.GetSpecifiedName(); !looksLikeToken(name) {
			return fmt.Sprintf("unknown flag: --%s", tokenward.Printable(name))
		}
		return "unknown flag (a tokenward token, not repeated: a token is never a command-line value)"
	case errors.As(err, &needsArg) && needsArg.GetSpecifiedShortnames() != "":
		return fmt.Sprintf("flag needs an argument: %s", shorthand(needsArg.GetSpecifiedName()))
	case errors.As(err, &needsArg):
		return fmt.Sprintf("flag needs an argument: --%s", tokenward.Printable(needsArg.GetSpecifiedName()))
	case errors.As(err, &syntax):
		return "bad flag syntax"
	}
	return err.Error()
}

// maxEchoedFlagValue is the longest flag value an error repeats: a short
// one ("xml", "3x") helps, a long one may be a secret in the wrong place.
const maxEchoedFlagValue = 16

// echoArg is s as an error may repeat it: quoted when short, printable
// and no token, else a note that it is not repeated.
func echoArg(s string) string {
	if !echoable(s) {
		return "(the argument is not repeated, as it may be a value)"
	}
	return strconv.Quote(s)
}

// echoable reports whether an error may repeat s (echoArg).
func echoable(s string) bool {
	return len(s) <= maxEchoedFlagValue && !looksLikeToken(s) && tokenward.Printable(s) == s
}

// shorthand quotes a one-letter flag as pflag does ('x'), a byte that is
// not printable ASCII as '?'.
func shorthand(name string) string {
	r, _ := utf8.DecodeRuneInString(name)
	if r < 0x20 || r >= 0x7f {
		r = '?'
	}
	return "'" + string(r) + "'"
}
