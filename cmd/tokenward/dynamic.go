package main

import (
	"maps"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/manifest"
)

// argSource is a dynamic source's path.
var argSource = argument{"PROJECT/ENV/NAME", "acme/prod/db", 3}

func (m *Main) newDynamicCommand() *cobra.Command {
	return group("dynamic", "Manage dynamic sources: credentials made for each reader, with a lease (docs/dynamic.md)",
		m.newDynamicCreateCommand(), m.newDynamicListCommand(), m.newDynamicShowCommand(), m.newDynamicDeleteCommand())
}

func (m *Main) newDynamicCreateCommand() *cobra.Command {
	var in api.DynamicSourceRequest
	var cfg struct{ admin, group, creation, revocation, url, format string }
	cmd := m.clientCommand(&cobra.Command{
		Use:   "create PROJECT/ENV/NAME --kind postgres --admin-secret PROJECT/ENV/NAME [--group ROLE] [--creation-sql SQL] [--revocation-sql SQL] [--ttl 15m] [--max-ttl 2h]",
		Short: "Create or replace a dynamic source",
		Long: `Every read of a dynamic source (secret get, run --dynamic, export --dynamic, the API) makes a
new credential with a lease tied to the reading token: for postgres, a LOGIN role valid until the
lease expires and a member of --group, which holds the privileges. The SQL templates take
{{name}} (the role), {{password}} (sent as a SCRAM verifier, never in the clear), {{expiration}}
and {{group}}, each quoted by tokenward. You need admin on the source and read on --admin-secret.

Before it stores the source, the server checks it: it connects with the admin URL and runs the
creation SQL, a renewal and the revocation for a throwaway role in a transaction it rolls back,
so a missing group, a template the database refuses or an admin role without the privileges fails
here (400; 503 when the database cannot be reached), not at a job's first read. --skip-check
stores it unchecked, for a database the server cannot reach yet.`,
		Example: `  tokenward dynamic create acme/prod/db --kind postgres --admin-secret acme/prod/PG_ADMIN_URL \
    --group app_migrate --ttl 15m --max-ttl 2h`,
		Args:              exactArgs(argSource),
		ValidArgsFunction: m.complete(argEnv),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			in.Config = map[string]string{}
			for k, v := range map[string]string{"admin_secret": cfg.admin, "group": cfg.group, "creation_sql": cfg.creation,
				"revocation_sql": cfg.revocation, "url": cfg.url, "format": cfg.format} {
				if v != "" {
					in.Config[k] = v
				}
			}
			for _, d := range []struct{ flag, v string }{{"--ttl", in.TTL}, {"--max-ttl", in.MaxTTL}} {
				if d.v == "" {
					continue
				}
				if v, err := time.ParseDuration(d.v); err != nil || v <= 0 {
					return usageError("%s: want a positive duration like 15m or 2h", d.flag)
				}
			}
			return nil
		},
	}, true, func(x *call) error {
		src, err := x.c.PutDynamicSource(x.ctx, x.args[0], in)
		if err != nil {
			return cliError(err)
		}
		return x.done(src, "Dynamic source %s (%s): leases of %s, renewable up to %s.", src.Path, src.Kind, src.TTL, src.MaxTTL)
	})
	f := cmd.Flags()
	f.StringVar(&in.Kind, "kind", "postgres", "kind of source: postgres")
	f.StringVar(&cfg.admin, "admin-secret", "", "postgres: secret holding the admin connection URL (PROJECT/ENV/NAME, same project)")
	f.StringVar(&cfg.group, "group", "", "postgres: group role that holds the privileges (the default SQL makes each role a member)")
	f.StringVar(&cfg.creation, "creation-sql", "", "postgres: SQL template creating the role (default: CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}} IN ROLE {{group}})")
	f.StringVar(&cfg.revocation, "revocation-sql", "", "postgres: SQL template dropping it (default: REASSIGN OWNED BY {{name}} TO {{group}}; DROP OWNED BY {{name}}; DROP ROLE IF EXISTS {{name}})")
	f.StringVar(&cfg.url, "url", "", "postgres: where clients connect, without user info (default: the admin URL without its user info)")
	f.StringVar(&cfg.format, "format", "", "postgres: url (default) or json ({\"user\":…,\"password\":…})")
	f.StringVar(&in.TTL, "ttl", "15m", "lifetime of a lease, and of each renewal")
	f.StringVar(&in.MaxTTL, "max-ttl", "", "longest a lease may be renewed to (default: the ttl)")
	f.IntVar(&in.MaxLeases, "max-leases", 0, "live leases at once (default: the server's)")
	f.BoolVar(&in.SkipCheck, "skip-check", false, "store the source without checking it against its database first")
	return cmd
}

func (x *call) printSources(ss []*api.DynamicSource) error {
	rows := make([][]string, len(ss))
	for i, s := range ss {
		rows[i] = []string{s.Path, s.Kind, s.Config["admin_secret"], s.Config["group"], s.TTL, s.MaxTTL}
	}
	return x.list(ss, []string{"SOURCE", "KIND", "ADMIN SECRET", "GROUP", "TTL", "MAX TTL"}, rows)
}

func (m *Main) newDynamicListCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "list [PREFIX]", Short: "List the dynamic sources you may read", Example: "  tokenward dynamic list acme/prod/",
		Args: cobra.MaximumNArgs(1),
	}, true, func(x *call) error {
		prefix := ""
		if len(x.args) == 1 {
			prefix = x.args[0]
		}
		ss, err := x.c.DynamicSources(x.ctx, prefix)
		if err != nil {
			return cliError(err)
		}
		return x.printSources(ss)
	})
}

func (m *Main) newDynamicShowCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "show PROJECT/ENV/NAME", Short: "Show one dynamic source", Example: "  tokenward dynamic show acme/prod/db",
		Args: exactArgs(argSource),
	}, true, func(x *call) error {
		s, err := x.c.DynamicSource(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		kv := []string{"source", s.Path, "kind", s.Kind, "ttl", s.TTL, "max ttl", s.MaxTTL, "max leases", strconv.Itoa(s.MaxLeases),
			"created by", s.CreatedBy, "updated", s.UpdatedAt.Format(time.RFC3339)}
		for _, k := range []string{"admin_secret", "group", "url", "format", "creation_sql", "revocation_sql"} {
			if v := s.Config[k]; v != "" {
				kv = append(kv, k, v)
			}
		}
		return x.detail(s, kv...)
	})
}

func (m *Main) newDynamicDeleteCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "delete PROJECT/ENV/NAME", Short: "Delete a dynamic source (refused while it has live leases)",
		Example: "  tokenward lease revoke --prefix acme/prod/db && tokenward dynamic delete acme/prod/db",
		Args:    exactArgs(argSource),
	}, false, func(x *call) error {
		if err := x.c.DeleteDynamicSource(x.ctx, x.args[0]); err != nil {
			return cliError(err)
		}
		return x.done(nil, "Deleted dynamic source %s.", x.args[0])
	})
}

// dynamicSourceInput is the API form of a manifest's dynamic source in
// the action's environment.
func dynamicSourceInput(a manifest.Action) api.DynamicSourceRequest {
	d := a.Dynamic
	in := api.DynamicSourceRequest{Kind: d.Kind, TTL: d.TTL.String(), MaxLeases: d.MaxLeases, SkipCheck: d.SkipCheck,
		Config: map[string]string{"admin_secret": a.Project + "/" + a.Env + "/" + d.AdminSecret}}
	if d.MaxTTL > 0 {
		in.MaxTTL = d.MaxTTL.String()
	}
	maps.Copy(in.Config, d.Config)
	return in
}
