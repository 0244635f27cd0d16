package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

func (m *Main) newTokenCommand() *cobra.Command {
	return group("token", "Mint, list and revoke access tokens",
		m.newTokenCreateCommand(), m.newTokenListCommand(), m.newTokenShowCommand("show"), m.newTokenRevokeCommand(), m.newTokenShowCommand("whoami"))
}

func (m *Main) newTokenCreateCommand() *cobra.Command {
	var in api.CreateTokenRequest
	var ttl string
	cmd := m.clientCommand(&cobra.Command{
		Use:     "create --name NAME --grant ACTION:PROJECT/ENV/NAME [--ttl 24h]",
		Short:   "Mint a token (printed once) whose grants and lifetime lie within yours",
		Example: "  tokenward token create --name deploy-bot --grant 'read:payments/prod/*' --ttl 30d > bot.token",
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if in.Name == "" {
				return usageError("--name is required (e.g. --name deploy-bot)")
			}
			if err := checkGrants(in.Grants); err != nil {
				return err
			}
			var err error
			if ttl != "" {
				in.TTL, err = parseTTL(ttl)
			}
			return err
		},
	}, true, func(x *call) error {
		t, secret, err := x.c.CreateToken(x.ctx, in)
		if err != nil {
			return cliError(err)
		}
		if x.json() {
			return writeJSON(x.Stdout, map[string]any{"token": t, "secret": secret})
		}
		fmt.Fprintf(x.Stderr, "Created token %s (%s), expires %s. It is shown once:\n", t.ID, t.Name, orNever(fmtTime(t.ExpiresAt)))
		fmt.Fprintln(x.Stdout, secret)
		return nil
	})
	cmd.Flags().StringVar(&in.Name, "name", "", "token name (unique among active tokens)")
	cmd.Flags().StringArrayVar(&in.Grants, "grant", nil, "grant ACTION:PROJECT/ENV/NAME (repeatable); actions: read write rotate revoke audit admin")
	cmd.Flags().StringVar(&ttl, "ttl", "", "lifetime, e.g. 15m, 24h, 30d (default: as long as your own token)")
	cmd.Flags().StringVar(&in.Kind, "kind", "service", "service (tws_) or admin (twa_)")
	cmd.Flags().StringVar(&in.Owner, "owner", "", "owner (team or person)")
	return cmd
}

// checkGrants wants at least one --grant, each well-formed.
func checkGrants(grants []string) error {
	if len(grants) == 0 {
		return usageError("at least one --grant is required, e.g. --grant 'read:payments/prod/*'")
	}
	if _, err := tokenward.ParseGrants(grants); err != nil {
		return usageError("--grant: %s", tokenward.ErrorMessage(err))
	}
	return nil
}

// parseTTL checks a --ttl and gives it in Go's form, which the server reads.
func parseTTL(s string) (string, error) {
	d, err := parseDuration(s)
	if err != nil {
		return "", usageError("--ttl: %v", err)
	}
	return d.String(), nil
}

func orNever(s string) string {
	if s == "-" {
		return "never"
	}
	return s
}

var tokenHeader = []string{"ID", "NAME", "KIND", "GRANTS", "CREATED", "EXPIRES", "LAST USED", "STATE"}

func tokenRow(t *tokenward.Token, now time.Time) []string {
	state := "active"
	switch {
	case !t.RevokedAt.IsZero():
		state = "revoked"
	case !t.Active(now):
		state = "expired"
	}
	return []string{t.ID, t.Name, string(t.Kind), strings.Join(t.Grants.Strings(), " "), fmtTime(t.CreatedAt), orNever(fmtTime(t.ExpiresAt)), fmtTime(t.LastUsedAt), state}
}

func (m *Main) newTokenListCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use:     "list",
		Short:   "List tokens: id, name, grants, created, expires, last used",
		Example: "  tokenward token list\n  tokenward token list -o json",
		Args:    noArgs,
	}, true, func(x *call) error {
		ts, err := x.c.Tokens(x.ctx)
		if err != nil {
			return cliError(err)
		}
		return x.printTokensWithUsage(ts)
	})
}

// newTokenShowCommand is token show ID-OR-NAME, or token whoami (the
// token in use).
func (m *Main) newTokenShowCommand(verb string) *cobra.Command {
	cmd := &cobra.Command{Use: "show ID-OR-NAME", Short: "Show one token", Example: "  tokenward token show deploy-bot", Args: exactArgs(argument{"ID-OR-NAME", "deploy-bot", 0})}
	if verb == "whoami" {
		cmd = &cobra.Command{Use: "whoami", Short: "Show the token you are using", Example: "  tokenward token whoami", Args: noArgs}
	}
	return m.clientCommand(cmd, true, func(x *call) error {
		var t *tokenward.Token
		var err error
		if verb == "whoami" {
			t, err = x.c.Self(x.ctx)
		} else {
			t, err = x.c.GetToken(x.ctx, x.args[0])
		}
		if err != nil {
			return cliError(err)
		}
		return x.list([]*tokenward.Token{t}, tokenHeader, [][]string{tokenRow(t, timeNow())})
	})
}

func (m *Main) newTokenRevokeCommand() *cobra.Command {
	var cascade bool
	cmd := m.clientCommand(&cobra.Command{
		Use:     "revoke ID-OR-NAME [--cascade]",
		Short:   "Revoke a token at once (with --cascade, every token it created too)",
		Example: "  tokenward token revoke deploy-bot\n  tokenward token revoke tok_... --cascade   # a leaked token and every token minted from it",
		Args:    exactArgs(argument{"ID-OR-NAME", "deploy-bot", 0}),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if strings.HasPrefix(args[0], "tw") && tokenward.TokenChecksumValid(args[0]) {
				return usageError("give the token's id or name, not the token itself")
			}
			return nil
		},
	}, true, func(x *call) error {
		if cascade {
			r, err := x.c.RevokeTokenCascade(x.ctx, x.args[0])
			if err != nil {
				return cliError(err)
			}
			// A run again finds nothing left: 0, the token revoked before.
			noun := "tokens"
			if len(r.Revoked) == 1 {
				noun = "token"
			}
			return x.done(r, "Revoked %d %s: %s (%s) and every still active token created by it, transitively.", len(r.Revoked), noun, r.ID, r.Name)
		}
		t, err := x.c.RevokeToken(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		return x.done(t, "Revoked token %s (%s).", t.ID, t.Name)
	})
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also revoke every token it created, transitively (-o json lists the ids revoked)")
	return cmd
}
