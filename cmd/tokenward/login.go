package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/inject"
	"github.com/tokenward/tokenward/internal/oidc/ciauth"
)

func (m *Main) newLoginCommand() *cobra.Command {
	var o oidcLoginOptions
	var useOIDC bool
	var export string
	cmd := &cobra.Command{
		Use:   "login --oidc [--binding NAME] [--audience tokenward] [--jwt-env VAR | --jwt-file FILE] [--export github]",
		Short: "Trade the CI job's OIDC identity token for a short-lived token (printed, or exported to $GITHUB_ENV)",
		Long: `login --oidc finds the CI job's identity token (GitHub Actions runner, the GitLab id_tokens
variable named by --jwt-env, or --jwt-file), exchanges it at TOKENWARD_ADDR for a just-in-time
twj_ token with the grants of the matching trust binding, and prints it. With --export github it
is masked (::add-mask::) and appended to $GITHUB_ENV as TOKENWARD_TOKEN instead.`,
		Example: "  tokenward login --oidc --export github\n  TOKENWARD_TOKEN=$(tokenward login --oidc --jwt-env CI_JOB_JWT --binding payments-deploy)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !useOIDC {
				return usageError("login needs --oidc (people use a token from `tokenward token create`)")
			}
			if export != "" && export != "github" {
				return usageError("--export must be github")
			}
			token, err := oidcLogin(m, cmd.Context(), o)
			if err != nil {
				return err
			}
			if export == "github" {
				ghEnv := m.Getenv("GITHUB_ENV")
				if err := inject.Export(inject.FormatGitHub, map[string]string{"TOKENWARD_TOKEN": token}, ghEnv, m.Stdout); err != nil {
					return fmt.Errorf("export github: %w", err)
				}
				fmt.Fprintln(m.Stderr, "Logged in; TOKENWARD_TOKEN is set for the next steps (masked).")
				return nil
			}
			fmt.Fprintln(m.Stdout, token)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&useOIDC, "oidc", false, "log in with the CI job's OIDC identity token")
	f.StringVar(&o.Binding, "binding", "", "trust binding to use (default: the one that matches)")
	f.StringVar(&o.Audience, "audience", ciauth.DefaultAudience, "audience to request from the GitHub runner")
	f.StringVar(&o.JWTEnv, "jwt-env", "", "variable holding the identity token (default TOKENWARD_ID_TOKEN)")
	f.StringVar(&o.JWTFile, "jwt-file", "", "file holding the identity token")
	f.StringVar(&export, "export", "", "github: mask the token and append TOKENWARD_TOKEN to $GITHUB_ENV instead of printing it")
	return cmd
}

// oidcLogin exchanges the CI job's identity token for a twj_ token at the
// server named by TOKENWARD_ADDR (login --oidc, run --oidc). Its errors
// never hold the identity token or the minted token.
var oidcLogin = func(m *Main, ctx context.Context, o oidcLoginOptions) (string, error) {
	f := ciauth.New()
	f.Getenv = m.Getenv
	if o.Audience != "" {
		f.Audience = o.Audience
	}
	if o.JWTEnv != "" {
		f.JWTEnv = o.JWTEnv
	}
	f.JWTFile = o.JWTFile
	jwt, src, err := f.Fetch(ctx)
	if err != nil {
		return "", cliError(err)
	}
	c, err := m.newClient("")
	if err != nil {
		return "", err
	}
	tok, secret, err := c.LoginOIDC(ctx, o.Binding, jwt)
	if err != nil {
		return "", fmt.Errorf("oidc login with the %s identity token: %w", src, cliError(err))
	}
	if kind, err := tokenward.ParseToken(secret); err != nil || kind != tokenward.TokenJIT {
		return "", fmt.Errorf("oidc login: the server answered with no just-in-time token")
	}
	fmt.Fprintf(m.Stderr, "Logged in through binding %s: token %s, expires %s.\n",
		strings.TrimPrefix(tok.CreatedBy, "binding:"), tok.ID, fmtTime(tok.ExpiresAt))
	return secret, nil
}
