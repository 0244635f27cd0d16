package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/oidc"
)

func (m *Main) newBindingCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "binding", Short: "Manage OIDC trust bindings: which CI jobs get which just-in-time grants"}
	cmd.AddCommand(m.newBindingCreateCommand(), m.newBindingListCommand(), m.newBindingShowCommand(),
		m.newBindingDeleteCommand(), m.newBindingEnableCommand(true), m.newBindingEnableCommand(false))
	return cmd
}

func (m *Main) newBindingCreateCommand() *cobra.Command {
	var cf clientFlags
	var in api.CreateBindingRequest
	var claims []string
	var ttl string
	cmd := &cobra.Command{
		Use:   "create NAME (--issuer URL | --preset github|gitlab) --claim KEY=VALUE... --grant ACTION:PROJECT/ENV/NAME... [--audience A] [--ttl 15m] [--disabled]",
		Short: "Trust the identity tokens of an issuer whose claims match, giving them grants for a TTL",
		Long: `A claim condition is KEY=VALUE (exact), KEY=glob* ('*' matches any run of characters, '/'
included) or KEY=a|b|c (one of; each may be a glob). At least one is required: a binding without
conditions would trust every repository of the issuer. You need admin over every grant given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Name = args[0]
			if err := oidc.ValidateBindingName(in.Name); err != nil {
				return usageError("%s", tokenward.ErrorMessage(err))
			}
			if in.Issuer == "" && in.Preset == "" {
				return usageError("--issuer or --preset (github, gitlab) is required")
			}
			if in.Preset != "" {
				b := &oidc.Binding{Issuer: in.Issuer}
				if err := b.ApplyPreset(in.Preset); err != nil {
					return usageError("%s", tokenward.ErrorMessage(err))
				}
			}
			if len(claims) == 0 {
				return usageError("at least one --claim is required, e.g. --claim repository=acme/payments (without one, every repository of the issuer would be trusted)")
			}
			conds, err := oidc.ParseClaimConditions(claims)
			if err != nil {
				return usageError("--claim: %s", tokenward.ErrorMessage(err))
			}
			for _, c := range conds {
				in.Claims = append(in.Claims, api.ClaimCondition{Claim: c.Claim, Op: string(c.Op), Values: c.Values})
			}
			if len(in.Grants) == 0 {
				return usageError("at least one --grant is required, e.g. --grant 'read:payments/prod/*'")
			}
			if _, err := tokenward.ParseGrants(in.Grants); err != nil {
				return usageError("%s", tokenward.ErrorMessage(err))
			}
			d, err := parseDuration(ttl)
			if err != nil {
				return usageError("--ttl: %v", err)
			}
			in.TTL = d.String()
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			b, err := c.CreateBindingResult(cmd.Context(), in)
			if err != nil {
				return cliError(err)
			}
			for _, w := range b.Warnings {
				fmt.Fprintln(m.Stderr, "warning:", w)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, b)
			}
			state := "enabled"
			if !b.Enabled {
				state = "disabled"
			}
			fmt.Fprintf(m.Stderr, "Created binding %s (%s): tokens from %s get %s for %s.\n", b.Name, state, b.Issuer, strings.Join(b.Grants, " "), b.TTL)
			return nil
		},
	}
	cf.register(cmd, true)
	f := cmd.Flags()
	f.StringVar(&in.Issuer, "issuer", "", "issuer URL (exactly the tokens' iss)")
	f.StringVar(&in.Preset, "preset", "", "github or gitlab: fills the issuer and checks claim names")
	f.StringArrayVar(&in.Audiences, "audience", []string{oidc.DefaultAudience}, "audience the token must carry (repeatable)")
	f.StringArrayVar(&claims, "claim", nil, "claim condition KEY=VALUE, KEY=glob* or KEY=a|b (repeatable; all must hold)")
	f.StringArrayVar(&in.Grants, "grant", nil, "grant ACTION:PROJECT/ENV/NAME for minted tokens (repeatable)")
	f.StringVar(&ttl, "ttl", "15m", "lifetime of minted tokens (capped by the server, default cap 1h)")
	f.BoolVar(&in.Disabled, "disabled", false, "create the binding disabled")
	return cmd
}

func (m *Main) printBindings(output string, bs []*api.Binding) error {
	if output == "json" {
		return writeJSON(m.Stdout, bs)
	}
	rows := make([][]string, len(bs))
	for i, b := range bs {
		conds := make([]string, len(b.Claims))
		for j, c := range b.Claims {
			conds[j] = c.Claim + "=" + strings.Join(c.Values, "|")
		}
		state := "enabled"
		if !b.Enabled {
			state = "disabled"
		}
		rows[i] = []string{b.Name, b.Issuer, strings.Join(b.Audiences, ","), strings.Join(conds, " "), strings.Join(b.Grants, " "), b.TTL, state}
	}
	return table(m.Stdout, []string{"NAME", "ISSUER", "AUDIENCE", "CLAIMS", "GRANTS", "TTL", "STATE"}, rows)
}

func (m *Main) newBindingListCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the bindings you administer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			bs, err := c.Bindings(cmd.Context())
			if err != nil {
				return cliError(err)
			}
			return m.printBindings(cf.output, bs)
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newBindingShowCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one binding",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			b, err := c.GetBinding(cmd.Context(), args[0])
			if err != nil {
				return cliError(err)
			}
			return m.printBindings(cf.output, []*api.Binding{b})
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newBindingDeleteCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a binding (tokens it minted live until they expire; revoke them with token revoke)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			b, err := c.DeleteBinding(cmd.Context(), args[0])
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, b)
			}
			fmt.Fprintf(m.Stderr, "Deleted binding %s.\n", b.Name)
			return nil
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newBindingEnableCommand(enable bool) *cobra.Command {
	var cf clientFlags
	verb, short := "enable", "Enable a binding"
	if !enable {
		verb, short = "disable", "Disable a binding: every exchange through it is refused"
	}
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			b, err := c.SetBindingEnabled(cmd.Context(), args[0], enable)
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, b)
			}
			fmt.Fprintf(m.Stderr, "Binding %s is %sd.\n", b.Name, verb)
			return nil
		},
	}
	cf.register(cmd, true)
	return cmd
}
