package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/api"
)

func (m *Main) newSecretCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "secret", Short: "Write, read and list secrets"}
	cmd.AddCommand(m.newSecretSetCommand(), m.newSecretGetCommand(), m.newSecretListCommand(),
		m.newSecretHistoryCommand(), m.newSecretRollbackCommand())
	return cmd
}

// maxStdinValue bounds what `secret set` reads; the server enforces its own
// (smaller, configurable) limit.
const maxStdinValue = 16 << 20

func (m *Main) newSecretSetCommand() *cobra.Command {
	var cf clientFlags
	var owner, description, expires string
	var tags []string
	var ifVersion int
	cmd := &cobra.Command{
		Use:   "set PROJECT/ENV/NAME",
		Short: "Write a new version of a secret; the value is read from standard input",
		Long: `set reads the value from standard input (never from the command line, where
it would land in shell history and process listings). One trailing newline is
dropped, so 'echo value | tokenward secret set ...' stores "value".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts, err := splitPath(args[0], 3)
			if err != nil {
				return err
			}
			in := api.PutSecretRequest{}
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
					if t, err = parseDate(expires); err != nil {
						return usageError("--expires: %v", err)
					}
				}
				in.ExpiresAt = &t
			}
			if f.Changed("if-version") {
				in.IfVersion = &ifVersion
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(io.LimitReader(m.Stdin, maxStdinValue+1))
			if err != nil {
				return fmt.Errorf("read value from standard input: %w", err)
			}
			if len(b) > maxStdinValue {
				return fmt.Errorf("value on standard input is larger than %d bytes", maxStdinValue)
			}
			value := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			if value == "" {
				return usageError("no value on standard input (pipe it in: printf '%%s' \"$VALUE\" | tokenward secret set %s)", args[0])
			}
			if !utf8.ValidString(value) {
				return fmt.Errorf("the value is not valid UTF-8 text; encode binary values (e.g. base64) first")
			}
			in.Value = &value
			s, err := c.SetSecret(cmd.Context(), parts[0], parts[1], parts[2], in)
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, s)
			}
			fmt.Fprintf(m.Stderr, "Wrote %s version %d.\n", s.Path(), s.Version)
			return nil
		},
	}
	cf.register(cmd, true)
	cmd.Flags().StringVar(&owner, "owner", "", "owner (team or person)")
	cmd.Flags().StringVar(&description, "description", "", "what the secret is for")
	cmd.Flags().StringSliceVar(&tags, "tag", nil, "tags (repeat or comma-separate)")
	cmd.Flags().StringVar(&expires, "expires", "", "the upstream credential's expiry: YYYY-MM-DD, RFC 3339, or never")
	cmd.Flags().IntVar(&ifVersion, "if-version", 0, "write only if the secret is at this version (0: only if new)")
	return cmd
}

func (m *Main) newSecretGetCommand() *cobra.Command {
	var cf clientFlags
	var version string
	cmd := &cobra.Command{
		Use:   "get PROJECT/ENV/NAME",
		Short: "Print a secret's value alone (for scripts)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts, err := splitPath(args[0], 3)
			if err != nil {
				return err
			}
			v, label := 0, ""
			switch version {
			case "", "current":
			case "previous", "pending":
				label = version
			default:
				if v, err = strconv.Atoi(version); err != nil || v < 1 {
					return usageError("--version must be a number of 1 or more, or current, previous or pending")
				}
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			var s *api.SecretResponse
			if label != "" {
				s, err = c.GetSecretLabel(cmd.Context(), parts[0], parts[1], parts[2], label)
			} else {
				s, err = c.GetSecret(cmd.Context(), parts[0], parts[1], parts[2], v)
			}
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, s)
			}
			io.WriteString(m.Stdout, s.Value)
			if isTerminal(m.Stdout) {
				io.WriteString(m.Stdout, "\n")
			}
			return nil
		},
	}
	cf.register(cmd, true)
	cmd.Flags().StringVar(&version, "version", "", "version number, or current, previous (valid through a rotation's grace) or pending")
	return cmd
}

func (m *Main) newSecretListCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list PROJECT/ENV",
		Short: "List secrets: names, versions, owners, expiry; never values",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts, err := splitPath(args[0], 2)
			if err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			list, err := c.Secrets(cmd.Context(), parts[0], parts[1])
			if err != nil {
				return cliError(err)
			}
			return m.printSecretsWithUsage(cmd.Context(), c, cf.output, parts[0], parts[1], list)
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newSecretHistoryCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "history PROJECT/ENV/NAME",
		Short: "List a secret's versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts, err := splitPath(args[0], 3)
			if err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			vs, err := c.SecretHistory(cmd.Context(), parts[0], parts[1], parts[2])
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, vs)
			}
			rows := make([][]string, len(vs))
			for i, v := range vs {
				rows[i] = []string{strconv.Itoa(v.Version), fmtTime(v.CreatedAt), orDash(v.CreatedBy)}
			}
			return table(m.Stdout, []string{"VERSION", "CREATED", "BY"}, rows)
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newSecretRollbackCommand() *cobra.Command {
	var cf clientFlags
	var toFlag string
	cmd := &cobra.Command{
		Use:   "rollback PROJECT/ENV/NAME --to N|previous",
		Short: "Write a new version with the value of version N, or undo a rotation within grace (--to previous)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts, err := splitPath(args[0], 3)
			if err != nil {
				return err
			}
			if toFlag == "previous" {
				return m.rollbackRotation(cmd, &cf, args[0])
			}
			to, err := strconv.Atoi(toFlag)
			if err != nil || to < 1 {
				return usageError("--to must be a version of 1 or more, or previous")
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			s, err := c.RollbackSecret(cmd.Context(), parts[0], parts[1], parts[2], to)
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, s)
			}
			fmt.Fprintf(m.Stderr, "Rolled %s back to the value of version %d, as version %d.\n", s.Path(), to, s.Version)
			return nil
		},
	}
	cf.register(cmd, true)
	cmd.Flags().StringVar(&toFlag, "to", "", "the version whose value to restore, or previous: make PREVIOUS current again within a rotation's grace")
	return cmd
}
