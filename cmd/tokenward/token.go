package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

func (m *Main) newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Mint, list and revoke access tokens"}
	cmd.AddCommand(m.newTokenCreateCommand(), m.newTokenListCommand(), m.newTokenShowCommand(), m.newTokenRevokeCommand(), m.newTokenWhoamiCommand())
	return cmd
}

func (m *Main) newTokenCreateCommand() *cobra.Command {
	var cf clientFlags
	var in api.CreateTokenRequest
	var ttl string
	cmd := &cobra.Command{
		Use:   "create --name NAME --grant ACTION:PROJECT/ENV/NAME [--ttl 24h]",
		Short: "Mint a token (printed once) whose grants and lifetime lie within yours",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if in.Name == "" {
				return usageError("--name is required")
			}
			if len(in.Grants) == 0 {
				return usageError("at least one --grant is required, e.g. --grant 'read:payments/prod/*'")
			}
			if _, err := tokenward.ParseGrants(in.Grants); err != nil {
				return usageError("%s", tokenward.ErrorMessage(err))
			}
			if ttl != "" {
				d, err := parseDuration(ttl)
				if err != nil {
					return usageError("--ttl: %v", err)
				}
				in.TTL = d.String()
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			t, secret, err := c.CreateToken(cmd.Context(), in)
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, map[string]any{"token": t, "secret": secret})
			}
			fmt.Fprintf(m.Stderr, "Created token %s (%s), expires %s. It is shown once:\n", t.ID, t.Name, orNever(fmtTime(t.ExpiresAt)))
			fmt.Fprintln(m.Stdout, secret)
			return nil
		},
	}
	cf.register(cmd, true)
	cmd.Flags().StringVar(&in.Name, "name", "", "token name (unique among active tokens)")
	cmd.Flags().StringArrayVar(&in.Grants, "grant", nil, "grant ACTION:PROJECT/ENV/NAME (repeatable); actions: read write rotate revoke audit admin")
	cmd.Flags().StringVar(&ttl, "ttl", "", "lifetime, e.g. 15m, 24h, 30d (default: as long as your own token)")
	cmd.Flags().StringVar(&in.Kind, "kind", "service", "service (tws_) or admin (twa_)")
	cmd.Flags().StringVar(&in.Owner, "owner", "", "owner (team or person)")
	return cmd
}

func orNever(s string) string {
	if s == "-" {
		return "never"
	}
	return s
}

func (m *Main) printTokens(output string, ts []*tokenward.Token) error {
	if output == "json" {
		return writeJSON(m.Stdout, ts)
	}
	rows := make([][]string, len(ts))
	for i, t := range ts {
		state := "active"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked"
		case !t.Active(timeNow()):
			state = "expired"
		}
		rows[i] = []string{t.ID, t.Name, string(t.Kind), strings.Join(t.Grants.Strings(), " "), fmtTime(t.CreatedAt), orNever(fmtTime(t.ExpiresAt)), fmtTime(t.LastUsedAt), state}
	}
	return table(m.Stdout, []string{"ID", "NAME", "KIND", "GRANTS", "CREATED", "EXPIRES", "LAST USED", "STATE"}, rows)
}

func (m *Main) newTokenListCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens: id, name, grants, created, expires, last used",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			ts, err := c.Tokens(cmd.Context())
			if err != nil {
				return cliError(err)
			}
			return m.printTokensWithUsage(cmd.Context(), c, cf.output, ts)
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newTokenShowCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "show ID-OR-NAME",
		Short: "Show one token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			t, err := c.GetToken(cmd.Context(), args[0])
			if err != nil {
				return cliError(err)
			}
			return m.printTokens(cf.output, []*tokenward.Token{t})
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newTokenWhoamiCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the token you are using",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			t, err := c.Self(cmd.Context())
			if err != nil {
				return cliError(err)
			}
			return m.printTokens(cf.output, []*tokenward.Token{t})
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newTokenRevokeCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID-OR-NAME",
		Short: "Revoke a token at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.HasPrefix(args[0], "tw") && tokenward.TokenChecksumValid(args[0]) {
				return usageError("give the token's id or name, not the token itself")
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			t, err := c.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, t)
			}
			fmt.Fprintf(m.Stderr, "Revoked token %s (%s).\n", t.ID, t.Name)
			return nil
		},
	}
	cf.register(cmd, true)
	return cmd
}
