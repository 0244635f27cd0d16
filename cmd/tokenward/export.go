package main

import (
	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/inject"
)

func (m *Main) newExportCommand() *cobra.Command {
	var sel selectFlags
	var format, output string
	var refs []envRef
	var dynamic []string
	var dyn []dynamicRef
	var f inject.Format
	cmd := m.clientCommand(&cobra.Command{
		Use:   "export --env PROJECT/ENV --format dotenv|json|shell|github|gitlab [--output FILE]",
		Short: "Write an environment's secrets in a format a CI system or tool reads",
		Long: `export writes the secrets the token may read to stdout or --output FILE (written
atomically, mode 0600). --format github appends to $GITHUB_ENV (or --output) with a
random heredoc delimiter per value and prints ::add-mask:: for every value first.
--format gitlab writes a dotenv artifact (artifacts:reports:dotenv).`,
		Example: "  tokenward export --env payments/prod --format dotenv --output .env\n  tokenward export --env payments/prod --format github",
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) (err error) {
			if refs, err = parseEnvRefs(sel.envs); err != nil {
				return err
			}
			if dyn, err = parseDynamicRefs(dynamic); err != nil {
				return err
			}
			if f, err = inject.ParseFormat(format); err != nil {
				return usageError("--format: %s", cliError(err))
			}
			if f == inject.FormatGitHub && output == "" {
				if output = m.Getenv("GITHUB_ENV"); output == "" {
					return usageError("--format github appends to $GITHUB_ENV, which is not set (outside GitHub Actions, give --output FILE)")
				}
			}
			return nil
		},
	}, false, func(x *call) error {
		secrets, err := fetchEnvs(x.ctx, x.c, refs)
		if err != nil {
			return cliError(err)
		}
		// Exported credentials outlive this command: their leases expire
		// (or are revoked with tokenward lease revoke, or with the token).
		leases, err := leaseAll(x.ctx, x.c, dyn, secrets, x.Stderr)
		if err != nil {
			return cliError(err)
		}
		warn := warner(x.Stderr)
		// The same selection and hijack refusal as run: a variable
		// exported to later CI steps can hijack them just as well.
		_, values, warnings, err := inject.BuildEnv([]string{}, secrets, sel.options())
		if err == nil {
			for _, w := range warnings {
				warn(w)
			}
			err = inject.Export(f, values, output, x.Stdout)
		}
		if err != nil {
			// Nothing usable was exported: the credentials made for it
			// must not stay live until their TTL.
			revokeAll(x.c, leases, warn)
			return cliError(err)
		}
		return nil
	})
	sel.register(cmd)
	cmd.Flags().StringArrayVar(&dynamic, "dynamic", nil, "also a credential of this dynamic source, [VAR=]PROJECT/ENV/NAME (repeatable); its lease expires on its own")
	cmd.Flags().StringVar(&format, "format", "dotenv", "dotenv, json, shell, github or gitlab")
	cmd.Flags().StringVar(&output, "output", "", "write to this file (0600) instead of stdout; for github, the $GITHUB_ENV file")
	return cmd
}
