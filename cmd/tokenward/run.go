package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/inject"
)

// runOptions are the flags of `tokenward run`.
type runOptions struct {
	sel            selectFlags
	noOverride     bool
	noMask         bool
	maskMin        int
	mount          string
	mountFormat    string
	watch          bool
	watchInterval  time.Duration
	stopSignal     string
	stopTimeout    time.Duration
	fallback       string
	fallbackMaxAge time.Duration
	oidc           bool
	dynamic        []string
	login          oidcLoginOptions
	gateways       []string // routes whose variables are set (gateway.go)
}

var stopSignals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGHUP": syscall.SIGHUP, "SIGQUIT": syscall.SIGQUIT,
	"SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
}

func (m *Main) newRunCommand() *cobra.Command {
	var cf clientFlags
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run --env PROJECT/ENV [flags] -- COMMAND [ARGS...]",
		Short: "Run a command with an environment's secrets in its environment, masked in its output",
		Long: `run fetches every secret of the environment(s) the token may read in one request
each, sets them in the command's environment and runs it directly (no shell), with
its stdout and stderr masked: every value, also split across writes and in base64,
URL-encoded and JSON-escaped form, is printed as ***.

It exits with the command's exit code, 128+N when signal N ended it, and 127 (not
found) or 126 (not executable) when it cannot be started. SIGINT, SIGTERM, SIGHUP
and SIGQUIT are forwarded to the command.`,
		Example: "  tokenward run --env payments/prod -- ./deploy.sh\n  tokenward run --env payments/dev --env payments/local --watch -- npm start",
		Args:    minArgs(argument{"COMMAND", "tokenward run --env payments/prod -- ./deploy.sh", 0}),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.run(cmd.Context(), cmd, &cf, &o, args)
		},
	}
	// Flags after the command belong to the command, with or without "--".
	cmd.Flags().SetInterspersed(false)
	cf.register(cmd, false)
	o.sel.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.noOverride, "no-override", false, "keep variables the environment already has")
	f.BoolVar(&o.noMask, "no-mask", false, "do not mask values in the command's output")
	f.IntVar(&o.maskMin, "mask-min", inject.DefaultMinMaskLen, "shortest value (in bytes) that is masked; shorter ones are named in a warning")
	f.IntVar(&o.maskMin, "mask-min-length", inject.DefaultMinMaskLen, "same as --mask-min")
	f.MarkHidden("mask-min-length")
	f.StringVar(&o.mount, "mount", "", "also write the secrets to this file (0600) while the command runs")
	f.StringVar(&o.mountFormat, "mount-format", "dotenv", "format of the --mount file: dotenv or json")
	f.BoolVar(&o.watch, "watch", false, "restart the command when a secret changes or rotates")
	f.DurationVar(&o.watchInterval, "watch-interval", 30*time.Second, "how often --watch asks the server for versions")
	f.StringVar(&o.stopSignal, "stop-signal", "SIGTERM", "signal that asks the command to stop before a --watch restart")
	f.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Second, "time the command has to stop before it is killed")
	f.StringVar(&o.fallback, "fallback", "", "keep an encrypted snapshot of the secrets here, used when the server cannot be reached")
	f.DurationVar(&o.fallbackMaxAge, "fallback-max-age", 24*time.Hour, "oldest snapshot --fallback may use")
	f.StringArrayVar(&o.dynamic, "dynamic", nil, "also a credential of this dynamic source, [VAR=]PROJECT/ENV/NAME (repeatable), renewed while the command runs and revoked when it exits")
	f.BoolVar(&o.oidc, "oidc", false, "log in with the CI job's OIDC identity token (no stored token)")
	f.StringVar(&o.login.Binding, "binding", "", "with --oidc: the trust binding to use")
	f.StringVar(&o.login.Audience, "audience", "tokenward", "with --oidc: audience to request from the CI runner")
	f.StringVar(&o.login.JWTEnv, "jwt-env", "", "with --oidc: variable holding the identity token (default TOKENWARD_ID_TOKEN)")
	f.StringVar(&o.login.JWTFile, "jwt-file", "", "with --oidc: file holding the identity token")
	f.StringArrayVar(&o.gateways, "gateway", nil, "a gateway route: set the variables tools read to call its API through it with this job's token (repeatable; docs/gateway.md)")
	return cmd
}

func (m *Main) run(ctx context.Context, cmd *cobra.Command, cf *clientFlags, o *runOptions, args []string) error {
	refs, err := parseEnvRefs(o.sel.envs)
	if err != nil {
		return err
	}
	format, err := inject.ParseFormat(o.mountFormat)
	if err != nil || (format != inject.FormatDotenv && format != inject.FormatJSON) {
		return usageError("--mount-format must be dotenv or json")
	}
	dyn, err := parseDynamicRefs(o.dynamic)
	if err != nil {
		return err
	}
	sig, ok := stopSignals[o.stopSignal]
	if !ok {
		return usageError("--stop-signal must be one of SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2")
	}
	switch {
	case o.maskMin < 1:
		return usageError("--mask-min must be 1 or more")
	case o.watch && o.watchInterval < time.Second:
		return usageError("--watch-interval must be at least 1s")
	case o.fallback != "" && o.fallbackMaxAge <= 0:
		return usageError("--fallback-max-age must be positive")
	case o.fallback != "" && o.oidc:
		// The snapshot key derives from the token, and --oidc mints a new
		// one each run; and with the server down there is no login either.
		return usageError("--fallback cannot be used with --oidc (the snapshot is keyed to a token, and --oidc gets a new one each run)")
	case !o.oidc && (cmd.Flags().Changed("binding") || cmd.Flags().Changed("jwt-env") || cmd.Flags().Changed("jwt-file")):
		return usageError("--binding, --jwt-env and --jwt-file need --oidc")
	}
	warn := warner(m.Stderr)
	c, err := m.apiClient(ctx, cf, o.oidc, o.login)
	if err != nil {
		return err
	}

	// The baseline of --watch is taken before the values, so a change in
	// between restarts the command rather than going unseen.
	var base map[string]int
	if o.watch {
		base, err = versionsOf(ctx, c, refs, o.sel.only)
		switch {
		case err != nil && o.fallback != "" && unreachable(err):
			// Start from the snapshot; the first answer of the server
			// differs from the empty baseline and restarts with fresh values.
			base = map[string]int{}
		case err != nil:
			return cliError(err)
		}
	}
	fetch := func(ctx context.Context) (map[string]string, error) { return fetchEnvs(ctx, c, refs) }
	var secrets map[string]string
	if o.fallback != "" {
		fb := &inject.Fallback{
			Path: o.fallback, Token: c.Token, Envs: envStrings(refs), MaxAge: o.fallbackMaxAge,
			Unreachable: unreachable, Denied: denied, Warn: warn,
		}
		secrets, err = fb.Fetch(ctx, fetch)
	} else {
		secrets, err = fetch(ctx)
	}
	if err != nil {
		return cliError(err)
	}
	// Credentials made for this run: renewed while it runs (up to their
	// max TTL), revoked when the command exits (a killed run leaves them
	// to expire). The renewals stop first (defers run last to first), so
	// none races the revocation. They run on a context of their own: the
	// command's ends with a signal the child may outlive.
	leases, err := leaseAll(ctx, c, dyn, secrets, m.Stderr)
	if err != nil {
		return cliError(err)
	}
	defer revokeAll(c, leases, warn)
	stopRenewing := newLeaseRenewer(c, warn).Start(context.WithoutCancel(ctx), leases)
	defer stopRenewing()

	// The run's own token reads the environment's secrets, and the
	// command gets it (TOKENWARD_TOKEN, and the tools' variables with
	// --gateway): masked like them.
	masks := map[string]string{"the run's token": c.Token}
	var baseEnv, reserved []string
	if len(o.gateways) > 0 {
		vars, err := gatewayEnv(ctx, c, c.Addr, c.Token, o.gateways)
		if err != nil {
			return cliError(err)
		}
		baseEnv = append(os.Environ(), vars...)
		// A secret named like one of the tools' variables is refused
		// rather than one replacing the other unseen.
		for _, kv := range vars {
			name, _, _ := strings.Cut(kv, "=")
			reserved = append(reserved, name)
		}
	}

	// The child gets the signals, forwarded by inject.Run; the command's
	// own context (cancelled on SIGINT/SIGTERM by main) must not also stop
	// it, or one Ctrl-C would reach the child twice.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	env := o.sel.options()
	env.NoOverride = o.noOverride
	env.Reserved = reserved
	cfg := inject.RunConfig{
		Command: args, Secrets: secrets, Env: env, BaseEnv: baseEnv,
		Stdin: m.Stdin, Stdout: m.Stdout, Stderr: m.Stderr,
		NoMask: o.noMask, MinMaskLen: o.maskMin, Masks: masks,
		MountPath: o.mount, MountFormat: format,
		StopSignal: sig, StopTimeout: o.stopTimeout,
		Warn: warn,
	}
	if o.watch {
		cfg.Watch = withDynamic(runCtx, watchSecrets(runCtx, c, refs, o.sel.only, base, o.watchInterval, warn), dyn, secrets)
	}
	code, err := inject.Run(runCtx, cfg)
	var se *inject.StartError
	switch {
	case errors.As(err, &se):
		return &exitError{code: se.ExitCode, err: err}
	case err != nil && code == 0:
		// Refused before anything started (an unknown --only name...).
		return cliError(err)
	case err != nil:
		return &exitError{code: code, err: fmt.Errorf("%s (the command exited with %d)", cliError(err), code)}
	case code != 0:
		return &exitError{code: code}
	}
	return nil
}

// withDynamic adds the run's --dynamic credentials (taken from secrets, where
// leaseAll put them) to every new set of secrets --watch delivers: their
// leases live as long as the run, and a restarted command needs them too.
func withDynamic(ctx context.Context, in <-chan map[string]string, dyn []dynamicRef, secrets map[string]string) <-chan map[string]string {
	if len(dyn) == 0 {
		return in
	}
	keep := make(map[string]string, len(dyn))
	for _, r := range dyn {
		keep[r.variable] = secrets[r.variable]
	}
	out := make(chan map[string]string)
	go func() {
		defer close(out)
		for next := range in {
			maps.Copy(next, keep)
			select {
			case out <- next:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
