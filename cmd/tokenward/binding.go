package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/oidc"
)

// argBinding is a binding's NAME argument.
var argBinding = argument{"NAME", "payments-deploy", 0}

func (m *Main) newBindingCommand() *cobra.Command {
	return group("binding", "Manage OIDC trust bindings: which CI jobs get which just-in-time grants",
		m.newBindingCreateCommand(), m.newBindingListCommand(), m.newBindingShowCommand(),
		m.newBindingChangeCommand("delete"), m.newBindingChangeCommand("enable"), m.newBindingChangeCommand("disable"))
}

func (m *Main) newBindingCreateCommand() *cobra.Command {
	var in api.CreateBindingRequest
	var claims []string
	var ttl string
	cmd := m.clientCommand(&cobra.Command{
		Use:   "create NAME (--issuer URL | --preset github|gitlab) --claim KEY=VALUE... --grant ACTION:PROJECT/ENV/NAME... [--audience A] [--ttl 15m] [--disabled]",
		Short: "Trust the identity tokens of an issuer whose claims match, giving them grants for a TTL",
		Long: `A claim condition is KEY=VALUE (exact), KEY=glob* ('*' matches any run of characters, '/'
included) or KEY=a|b|c (one of; each may be a glob). At least one is required: a binding without
conditions would trust every repository of the issuer. You need admin over every grant given.`,
		Example: `  tokenward binding create payments-deploy --preset github \
    --claim repository=acme/payments --claim ref=refs/heads/main \
    --grant 'read:payments/prod/*' --ttl 15m`,
		Args: exactArgs(argBinding),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			in.Name = args[0]
			if err := oidc.ValidateBindingName(in.Name); err != nil {
				return usageError("NAME: %s", tokenward.ErrorMessage(err))
			}
			if in.Issuer == "" && in.Preset == "" {
				return usageError("--issuer or --preset (github, gitlab) is required")
			}
			if in.Preset != "" {
				b := &oidc.Binding{Issuer: in.Issuer}
				if err := b.ApplyPreset(in.Preset); err != nil {
					return usageError("--preset: %s", tokenward.ErrorMessage(err))
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
			if err := checkGrants(in.Grants); err != nil {
				return err
			}
			in.TTL, err = parseTTL(ttl)
			return err
		},
	}, true, func(x *call) error {
		b, err := x.c.CreateBindingResult(x.ctx, in)
		if err != nil {
			return cliError(err)
		}
		for _, w := range b.Warnings {
			fmt.Fprintln(x.Stderr, "warning:", w)
		}
		return x.done(b, "Created binding %s (%s): tokens from %s get %s for %s.", b.Name, enabled(b.Enabled), b.Issuer, strings.Join(b.Grants, " "), b.TTL)
	})
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

func enabled(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

func (x *call) printBindings(bs []*api.Binding) error {
	rows := make([][]string, len(bs))
	for i, b := range bs {
		conds := make([]string, len(b.Claims))
		for j, c := range b.Claims {
			conds[j] = c.Claim + "=" + strings.Join(c.Values, "|")
		}
		rows[i] = []string{b.Name, b.Issuer, strings.Join(b.Audiences, ","), strings.Join(conds, " "), strings.Join(b.Grants, " "), b.TTL, enabled(b.Enabled)}
	}
	return x.list(bs, []string{"NAME", "ISSUER", "AUDIENCE", "CLAIMS", "GRANTS", "TTL", "STATE"}, rows)
}

func (m *Main) newBindingListCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "list", Short: "List the bindings you administer", Example: "  tokenward binding list -o json", Args: noArgs,
	}, true, func(x *call) error {
		bs, err := x.c.Bindings(x.ctx)
		if err != nil {
			return cliError(err)
		}
		return x.printBindings(bs)
	})
}

func (m *Main) newBindingShowCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "show NAME", Short: "Show one binding", Example: "  tokenward binding show payments-deploy", Args: exactArgs(argBinding),
	}, true, func(x *call) error {
		b, err := x.c.GetBinding(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		return x.printBindings([]*api.Binding{b})
	})
}

// newBindingChangeCommand is binding delete, enable or disable.
func (m *Main) newBindingChangeCommand(verb string) *cobra.Command {
	short := map[string]string{
		"delete":  "Delete a binding (tokens it minted live until they expire; revoke them with token revoke)",
		"enable":  "Enable a binding",
		"disable": "Disable a binding: every exchange through it is refused",
	}[verb]
	return m.clientCommand(&cobra.Command{
		Use: verb + " NAME", Short: short, Example: "  tokenward binding " + verb + " payments-deploy", Args: exactArgs(argBinding),
	}, true, func(x *call) error {
		var b *api.Binding
		var err error
		if verb == "delete" {
			b, err = x.c.DeleteBinding(x.ctx, x.args[0])
		} else {
			b, err = x.c.SetBindingEnabled(x.ctx, x.args[0], verb == "enable")
		}
		if err != nil {
			return cliError(err)
		}
		if verb == "delete" {
			return x.done(b, "Deleted binding %s.", b.Name)
		}
		return x.done(b, "Binding %s is %sd.", b.Name, verb)
	})
}
