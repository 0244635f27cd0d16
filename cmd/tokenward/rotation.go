package main

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/rotate"
)

// newRotationCommand manages rotation policies: set, show, list, disable,
// enable, history.
func (m *Main) newRotationCommand() *cobra.Command {
	return group("rotation", "Manage rotation policies and see rotation history",
		m.newRotationSetCommand(), m.newRotationShowCommand(), m.newRotationListCommand(),
		m.newRotationDisableCommand(false), m.newRotationDisableCommand(true), m.newRotationHistoryCommand())
}

// configKeyStart finds where a new key=value pair starts in a --config list,
// so values may hold commas (exec args, URLs).
var configKeyStart = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`,([a-z][a-z0-9_]*)=`) })

// parseRotationConfig reads "k=v,k2=v2" (and repeated flags) into a map.
func parseRotationConfig(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range list {
		var parts []string
		last := 0
		for _, loc := range configKeyStart().FindAllStringIndex(s, -1) {
			parts = append(parts, s[last:loc[0]])
			last = loc[0] + 1
		}
		parts = append(parts, s[last:])
		for _, p := range parts {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return nil, usageError("--config %q: want key=value[,key=value...]", p)
			}
			if _, dup := out[k]; dup {
				return nil, usageError("--config: %s given twice", k)
			}
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (m *Main) newRotationSetCommand() *cobra.Command {
	var p api.RotationPolicy
	var config []string
	cmd := m.secretCommand(&cobra.Command{
		Use:   "set PROJECT/ENV/NAME --rotator R (--every 30d | --cron '0 3 * * 1') [--jitter 1h] [--grace 24h] [--config k=v,...]",
		Short: "Create or replace a secret's rotation policy",
		Long: `set creates or replaces a rotation policy. The config never holds a secret:
name stored secrets by path instead (dsn_secret=payments/prod/DB_ADMIN_URL).

Rotators: random (length, alphabet or template), tokenward (none), postgres
(dsn_secret, role, url, roles, format), webhook (url, key_secret, test), exec
(command, args as a JSON array, timeout). See docs/rotation.md.`,
		Example: `  tokenward rotation set payments/prod/API_KEY --rotator random --every 30d --grace 24h --config length=40
  tokenward rotation set payments/prod/DB_PASSWORD --rotator postgres --cron '0 3 * * 1' \
    --config dsn_secret=payments/prod/DB_ADMIN_URL,role=app`,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if p.Rotator == "" {
				return usageError("--rotator is required (random, tokenward, postgres, webhook or exec)")
			}
			for flag, v := range map[string]string{"--every": p.Every, "--jitter": p.Jitter, "--grace": p.Grace} {
				if v != "" {
					if _, err := rotate.ParseDuration(v); err != nil {
						return usageError("%s: %s", flag, cliError(err))
					}
				}
			}
			var err error
			p.Config, err = parseRotationConfig(config)
			p.Secret = args[0]
			return err
		},
	}, true, func(x *call, _ []string) error {
		out, err := x.c.SetRotationPolicy(x.ctx, &p)
		if err != nil {
			return cliError(err)
		}
		return x.done(out, "Rotation policy of %s set: %s, next at %s.", out.Secret, schedule(out), fmtTime(out.NextAt))
	})
	f := cmd.Flags()
	f.StringVar(&p.Every, "every", "", "rotate at this interval (30d, 2w, 12h); exclusive with --cron")
	f.StringVar(&p.Cron, "cron", "", "rotate on this 5-field schedule, UTC; exclusive with --every")
	f.StringVar(&p.Jitter, "jitter", "", "spread rotations by a fixed per-secret offset up to this")
	f.StringVar(&p.Grace, "grace", "", "how long PREVIOUS stays valid after a rotation (default 0)")
	f.StringVar(&p.Rotator, "rotator", "", "random, tokenward, postgres, webhook or exec")
	f.StringArrayVar(&config, "config", nil, "rotator config as key=value[,key=value...] (repeatable); never a secret")
	f.BoolVar(&p.Disabled, "disabled", false, "store the policy without scheduling it")
	return cmd
}

func schedule(p *api.RotationPolicy) string {
	s := "every " + p.Every
	if p.Cron != "" {
		s = "cron '" + p.Cron + "'"
	}
	if p.Jitter != "" {
		s += " (jitter " + p.Jitter + ")"
	}
	if p.Disabled {
		s += ", disabled"
	}
	return s
}

func configString(c map[string]string) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + c[k]
	}
	return strings.Join(keys, ",")
}

func (m *Main) newRotationShowCommand() *cobra.Command {
	return m.secretCommand(&cobra.Command{
		Use:     "show PROJECT/ENV/NAME",
		Short:   "Show a secret's rotation policy",
		Example: "  tokenward rotation show payments/prod/API_KEY",
	}, true, func(x *call, _ []string) error {
		p, err := x.c.RotationPolicy(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		return x.detail(p, "secret", p.Secret, "schedule", schedule(p), "grace", orDash(p.Grace), "rotator", p.Rotator,
			"config", orDash(configString(p.Config)), "last", fmtTime(p.LastAt), "next", fmtTime(p.NextAt))
	})
}

func (m *Main) newRotationListCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "list", Short: "List the rotation policies you may see", Example: "  tokenward rotation list", Args: noArgs,
	}, true, func(x *call) error {
		ps, err := x.c.RotationPolicies(x.ctx)
		if err != nil {
			return cliError(err)
		}
		rows := make([][]string, len(ps))
		for i, p := range ps {
			rows[i] = []string{p.Secret, p.Rotator, schedule(p), orDash(p.Grace), fmtTime(p.LastAt), fmtTime(p.NextAt)}
		}
		return x.list(ps, []string{"SECRET", "ROTATOR", "SCHEDULE", "GRACE", "LAST", "NEXT"}, rows)
	})
}

func (m *Main) newRotationDisableCommand(enable bool) *cobra.Command {
	use, short, done := "disable", "Stop scheduled rotations of a secret (rotate now still works)", "disabled"
	if enable {
		use, short, done = "enable", "Resume scheduled rotations of a secret", "enabled"
	}
	return m.secretCommand(&cobra.Command{
		Use: use + " PROJECT/ENV/NAME", Short: short, Example: "  tokenward rotation " + use + " payments/prod/API_KEY",
	}, true, func(x *call, _ []string) error {
		p, err := x.c.DisableRotationPolicy(x.ctx, x.args[0], enable)
		if err != nil {
			return cliError(err)
		}
		return x.done(p, "Scheduled rotation of %s %s.", p.Secret, done)
	})
}

func rotationRows(rs []*rotate.Rotation) [][]string {
	rows := make([][]string, len(rs))
	for i, r := range rs {
		versions := strconv.Itoa(r.CurrentVersion) + "→" + strconv.Itoa(r.PendingVersion)
		if r.PendingVersion == 0 {
			versions = strconv.Itoa(r.CurrentVersion) + "→-"
		}
		rows[i] = []string{r.ID, r.Path, r.Rotator, string(r.Step), versions, fmtTime(r.CreatedAt), fmtTime(r.NextAt), orDash(r.Reason), orDash(r.Error)}
	}
	return rows
}

var rotationHeader = []string{"ID", "SECRET", "ROTATOR", "STEP", "VERSIONS", "STARTED", "NEXT", "REASON", "ERROR"}

func (m *Main) newRotationHistoryCommand() *cobra.Command {
	return m.secretCommand(&cobra.Command{
		Use:     "history PROJECT/ENV/NAME",
		Short:   "List a secret's rotations, newest first",
		Example: "  tokenward rotation history payments/prod/API_KEY -o json",
	}, true, func(x *call, _ []string) error {
		h, err := x.c.RotationHistory(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		return x.list(h, rotationHeader, rotationRows(h))
	})
}
