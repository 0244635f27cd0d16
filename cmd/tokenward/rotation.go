package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/rotate"
)

// newRotationCommand manages rotation policies: set, show, list, disable,
// enable, history.
func (m *Main) newRotationCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "rotation", Short: "Manage rotation policies and see rotation history"}
	cmd.AddCommand(m.newRotationSetCommand(), m.newRotationShowCommand(), m.newRotationListCommand(),
		m.newRotationDisableCommand(false), m.newRotationDisableCommand(true), m.newRotationHistoryCommand())
	return cmd
}

// configKeyStart finds where a new key=value pair starts in a --config list,
// so values may hold commas (exec args, URLs).
var configKeyStart = regexp.MustCompile(`,([a-z][a-z0-9_]*)=`)

// parseRotationConfig reads "k=v,k2=v2" (and repeated flags) into a map.
func parseRotationConfig(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range list {
		var parts []string
		last := 0
		for _, loc := range configKeyStart.FindAllStringIndex(s, -1) {
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

func checkSecretPath(s string) error {
	_, err := splitPath(s, 3)
	return err
}

func (m *Main) newRotationSetCommand() *cobra.Command {
	var cf clientFlags
	var p api.RotationPolicy
	var config []string
	cmd := &cobra.Command{
		Use:   "set PROJECT/ENV/NAME --rotator R (--every 30d | --cron '0 3 * * 1') [--jitter 1h] [--grace 24h] [--config k=v,...]",
		Short: "Create or replace a secret's rotation policy",
		Long: `set creates or replaces a rotation policy. The config never holds a secret:
name stored secrets by path instead (dsn_secret=payments/prod/DB_ADMIN_URL).

Rotators: random (length, alphabet or template), tokenward (none), postgres
(dsn_secret, role, url, roles, format), webhook (url, key_secret, test), exec
(command, args as a JSON array, timeout). See docs/rotation.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSecretPath(args[0]); err != nil {
				return err
			}
			if p.Rotator == "" {
				return usageError("--rotator is required")
			}
			for flag, v := range map[string]string{"--every": p.Every, "--jitter": p.Jitter, "--grace": p.Grace} {
				if v != "" {
					if _, err := rotate.ParseDuration(v); err != nil {
						return usageError("%s: %s", flag, cliError(err))
					}
				}
			}
			var err error
			if p.Config, err = parseRotationConfig(config); err != nil {
				return err
			}
			p.Secret = args[0]
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			out, err := c.SetRotationPolicy(cmd.Context(), &p)
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, out)
			}
			fmt.Fprintf(m.Stderr, "Rotation policy of %s set: %s, next at %s.\n", out.Secret, schedule(out), fmtTime(out.NextAt))
			return nil
		},
	}
	cf.register(cmd, true)
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
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "show PROJECT/ENV/NAME",
		Short: "Show a secret's rotation policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSecretPath(args[0]); err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			p, err := c.RotationPolicy(cmd.Context(), args[0])
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, p)
			}
			return table(m.Stdout, []string{"FIELD", "VALUE"}, [][]string{
				{"secret", p.Secret}, {"schedule", schedule(p)}, {"grace", orDash(p.Grace)}, {"rotator", p.Rotator},
				{"config", orDash(configString(p.Config))}, {"last", fmtTime(p.LastAt)}, {"next", fmtTime(p.NextAt)},
			})
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newRotationListCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the rotation policies you may see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			ps, err := c.RotationPolicies(cmd.Context())
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, ps)
			}
			rows := make([][]string, len(ps))
			for i, p := range ps {
				rows[i] = []string{p.Secret, p.Rotator, schedule(p), orDash(p.Grace), fmtTime(p.LastAt), fmtTime(p.NextAt)}
			}
			return table(m.Stdout, []string{"SECRET", "ROTATOR", "SCHEDULE", "GRACE", "LAST", "NEXT"}, rows)
		},
	}
	cf.register(cmd, true)
	return cmd
}

func (m *Main) newRotationDisableCommand(enable bool) *cobra.Command {
	var cf clientFlags
	use, short, done := "disable", "Stop scheduled rotations of a secret (rotate now still works)", "disabled"
	if enable {
		use, short, done = "enable", "Resume scheduled rotations of a secret", "enabled"
	}
	cmd := &cobra.Command{
		Use:   use + " PROJECT/ENV/NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSecretPath(args[0]); err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			p, err := c.DisableRotationPolicy(cmd.Context(), args[0], enable)
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, p)
			}
			fmt.Fprintf(m.Stderr, "Scheduled rotation of %s %s.\n", p.Secret, done)
			return nil
		},
	}
	cf.register(cmd, true)
	return cmd
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
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "history PROJECT/ENV/NAME",
		Short: "List a secret's rotations, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSecretPath(args[0]); err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			h, err := c.RotationHistory(cmd.Context(), args[0])
			if err != nil {
				return cliError(err)
			}
			if cf.output == "json" {
				return writeJSON(m.Stdout, h)
			}
			return table(m.Stdout, rotationHeader, rotationRows(h))
		},
	}
	cf.register(cmd, true)
	return cmd
}
