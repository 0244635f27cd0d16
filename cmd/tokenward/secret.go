package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

func (m *Main) newSecretCommand() *cobra.Command {
	return group("secret", "Write, read and list secrets",
		m.newSecretSetCommand(), m.newSecretGetCommand(), m.newSecretListCommand(),
		m.newSecretHistoryCommand(), m.newSecretRollbackCommand())
}

// maxStdinValue bounds what `secret set` reads; the server enforces its own
// (smaller, configurable) limit.
const maxStdinValue = 16 << 20

// secretCommand is a client command on one PROJECT/ENV/NAME argument,
// completed from the server; do gets the argument's three parts.
func (m *Main) secretCommand(cmd *cobra.Command, output bool, do func(x *call, p []string) error) *cobra.Command {
	cmd.Args, cmd.ValidArgsFunction = exactArgs(argSecret), m.complete(argSecret)
	return m.clientCommand(cmd, output, func(x *call) error {
		return do(x, strings.Split(x.args[0], "/"))
	})
}

func (m *Main) newSecretSetCommand() *cobra.Command {
	var owner, description, expires string
	var tags []string
	var ifVersion int
	in := api.PutSecretRequest{}
	cmd := m.secretCommand(&cobra.Command{
		Use:   "set PROJECT/ENV/NAME",
		Short: "Write a new version of a secret; the value is read from standard input",
		Long: `set reads the value from standard input (never from the command line, where
it would land in shell history and process listings). One trailing newline is
dropped, so 'echo value | tokenward secret set ...' stores "value".`,
		Example: `  printf '%s' "$STRIPE_KEY" | tokenward secret set payments/prod/STRIPE_KEY --owner team-payments --expires 2027-01-31`,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.Changed("owner") {
				in.Owner = &owner
			}
			if f.Changed("description") {
				in.Description = &description
			}
			if f.Changed("tag") {
				in.Tags = &tags
			}
			if f.Changed("expires") {
				t := time.Time{}
				if expires != "" && expires != "never" {
					var err error
					if t, err = parseDate(expires); err != nil {
						return usageError("--expires: %v", err)
					}
				}
				in.ExpiresAt = &t
			}
			if f.Changed("if-version") {
				in.IfVersion = &ifVersion
			}
			return nil
		},
	}, true, func(x *call, p []string) error {
		b, err := io.ReadAll(io.LimitReader(x.Stdin, maxStdinValue+1))
		if err != nil {
			return fmt.Errorf("read value from standard input: %w", err)
		}
		if len(b) > maxStdinValue {
			return fmt.Errorf("value on standard input is larger than %d bytes", maxStdinValue)
		}
		// One trailing newline: \n, or \r\n; a bare trailing \r is the value's.
		value := string(b)
		if v, ok := strings.CutSuffix(value, "\n"); ok {
			value = strings.TrimSuffix(v, "\r")
		}
		if value == "" {
			return usageError("no value on standard input (pipe it in: printf '%%s' \"$VALUE\" | tokenward secret set %s)", x.args[0])
		}
		if !utf8.ValidString(value) {
			return fmt.Errorf("the value is not valid UTF-8 text; encode binary values (e.g. base64) first")
		}
		in.Value = &value
		s, err := x.c.SetSecret(x.ctx, p[0], p[1], p[2], in)
		if err != nil {
			return cliError(err)
		}
		return x.done(s, "Wrote %s version %d.", s.Path(), s.Version)
	})
	// An argument after the path is most likely the value: refused
	// without repeating it (stderr lands in CI logs).
	pathOnly := cmd.Args
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return usageError("secret set takes no value argument: the value is read from standard input (an argument lands in shell history and process listings); pipe it in: printf '%%s' \"$VALUE\" | tokenward secret set PROJECT/ENV/NAME")
		}
		return pathOnly(cmd, args)
	}
	cmd.Flags().StringVar(&owner, "owner", "", "owner (team or person)")
	cmd.Flags().StringVar(&description, "description", "", "what the secret is for")
	cmd.Flags().StringSliceVar(&tags, "tag", nil, "tags (repeat or comma-separate)")
	cmd.Flags().StringVar(&expires, "expires", "", "the upstream credential's expiry: YYYY-MM-DD, RFC 3339, or never")
	cmd.Flags().IntVar(&ifVersion, "if-version", 0, "write only if the secret is at this version (0: only if new)")
	return cmd
}

func (m *Main) newSecretGetCommand() *cobra.Command {
	var version, label string
	var v int
	cmd := m.secretCommand(&cobra.Command{
		Use:     "get PROJECT/ENV/NAME",
		Short:   "Print a secret's value alone (for scripts)",
		Example: "  tokenward secret get payments/prod/STRIPE_KEY\n  tokenward secret get payments/prod/STRIPE_KEY --version previous",
		PreRunE: func(cmd *cobra.Command, args []string) error {
			switch version {
			case "", "current":
			case "previous", "pending":
				label = version
			default:
				var err error
				if v, err = strconv.Atoi(version); err != nil || v < 1 {
					return usageError("--version must be a number of 1 or more, or current, previous or pending")
				}
			}
			return nil
		},
	}, true, func(x *call, p []string) error {
		var s *api.SecretResponse
		var err error
		if label != "" {
			s, err = x.c.GetSecretLabel(x.ctx, p[0], p[1], p[2], label)
		} else {
			s, err = x.c.GetSecret(x.ctx, p[0], p[1], p[2], v)
		}
		if tokenward.ErrorCode(err) == tokenward.ENOTFOUND && version == "" {
			// Not a stored secret: perhaps a dynamic source (lease.go).
			if done, lerr := x.printLease(p); done {
				return lerr
			}
		}
		if err != nil {
			return cliError(err)
		}
		if x.json() {
			return writeJSON(x.Stdout, s)
		}
		io.WriteString(x.Stdout, s.Value)
		if isTerminal(x.Stdout) {
			io.WriteString(x.Stdout, "\n")
		}
		return nil
	})
	cmd.Flags().StringVar(&version, "version", "", "version number, or current, previous (valid through a rotation's grace) or pending")
	return cmd
}

func (m *Main) newSecretListCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use:               "list PROJECT/ENV",
		Short:             "List secrets: names, versions, owners, expiry; never values",
		Example:           "  tokenward secret list payments/prod",
		Args:              exactArgs(argEnv),
		ValidArgsFunction: m.complete(argEnv),
	}, true, func(x *call) error {
		p := strings.Split(x.args[0], "/")
		list, err := x.c.Secrets(x.ctx, p[0], p[1])
		if err != nil {
			return cliError(err)
		}
		return x.printSecretsWithUsage(p[0], p[1], list)
	})
}

func (m *Main) newSecretHistoryCommand() *cobra.Command {
	return m.secretCommand(&cobra.Command{
		Use:     "history PROJECT/ENV/NAME",
		Short:   "List a secret's versions",
		Example: "  tokenward secret history payments/prod/STRIPE_KEY",
	}, true, func(x *call, p []string) error {
		vs, err := x.c.SecretHistory(x.ctx, p[0], p[1], p[2])
		if err != nil {
			return cliError(err)
		}
		rows := make([][]string, len(vs))
		for i, v := range vs {
			rows[i] = []string{strconv.Itoa(v.Version), fmtTime(v.CreatedAt), orDash(v.CreatedBy)}
		}
		return x.list(vs, []string{"VERSION", "CREATED", "BY"}, rows)
	})
}

func (m *Main) newSecretRollbackCommand() *cobra.Command {
	var toFlag string
	var to int
	cmd := m.secretCommand(&cobra.Command{
		Use:     "rollback PROJECT/ENV/NAME --to N|previous",
		Short:   "Write a new version with the value of version N, or undo a rotation within grace (--to previous)",
		Example: "  tokenward secret rollback payments/prod/STRIPE_KEY --to 1\n  tokenward secret rollback payments/prod/STRIPE_KEY --to previous",
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if toFlag == "previous" {
				return nil
			}
			var err error
			if to, err = strconv.Atoi(toFlag); err != nil || to < 1 {
				return usageError("--to must be a version of 1 or more, or previous")
			}
			return nil
		},
	}, true, func(x *call, p []string) error {
		if toFlag == "previous" {
			// PREVIOUS becomes CURRENT again within the last rotation's grace.
			r, err := x.c.RollbackRotation(x.ctx, x.args[0])
			if err != nil {
				return cliError(err)
			}
			return x.done(r, "Rolled %s back to version %d (PREVIOUS is CURRENT again); version %d will not be revoked.", r.Path, r.CurrentVersion, r.PendingVersion)
		}
		s, err := x.c.RollbackSecret(x.ctx, p[0], p[1], p[2], to)
		if err != nil {
			return cliError(err)
		}
		return x.done(s, "Rolled %s back to the value of version %d, as version %d.", s.Path(), to, s.Version)
	})
	cmd.Flags().StringVar(&toFlag, "to", "", "the version whose value to restore, or previous: make PREVIOUS current again within a rotation's grace")
	return cmd
}
