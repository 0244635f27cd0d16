package main

import (
	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// argDBRoute is a database route's NAME argument.
var argDBRoute = argument{"NAME", "pgprod", 0}

// newGatewayDBCmd is `tokenward gateway db`: the routes of the database
// gateway (docs/gateway-db.md).
func (m *Main) newGatewayDBCmd() *cobra.Command {
	return group("db", "Manage database gateway routes: clients sign in to PostgreSQL with their token, never the password",
		m.newGatewayDBCreateCommand(), m.newGatewayDBListCommand(), m.newGatewayDBNameCommand("show"), m.newGatewayDBNameCommand("delete"))
}

func checkDBRouteName(name string) error {
	if err := tokenward.ValidateRouteName(name); err != nil {
		return usageError("NAME: %s", tokenward.ErrorMessage(err))
	}
	return nil
}

func (m *Main) newGatewayDBCreateCommand() *cobra.Command {
	var in api.CreateDBRouteRequest
	cmd := m.clientCommand(&cobra.Command{
		Use:   "create NAME --upstream HOST:PORT --secret PROJECT/ENV/NAME",
		Short: "Route database clients with gateway:NAME to an upstream PostgreSQL, signed in with a secret's URL",
		Long: `The secret holds a postgres:// URL (user, password, database, optionally sslmode and
sslrootcert); the route's upstream replaces its host and port. Each new session reads the
secret's current version, so a rotated password is used from the next session on. Clients
connect to a server started with --gateway-db-listen, with NAME as the user name and their
tokenward token as the password; the token needs the grant gateway:NAME. You need admin over
the secret.`,
		Example: `  tokenward gateway db create pgprod --upstream db.internal:5432 --secret acme/prod/DATABASE_URL`,
		Args:    exactArgs(argDBRoute),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			in.Name = args[0]
			if err := checkDBRouteName(in.Name); err != nil {
				return err
			}
			if err := tokenward.ValidateUpstream(in.Upstream); err != nil {
				return usageError("--upstream: %s", tokenward.ErrorMessage(err))
			}
			if in.Secret == "" {
				return usageError("--secret PROJECT/ENV/NAME is required (a secret holding a postgres:// URL)")
			}
			_, err := splitPath(in.Secret, 3)
			return err
		},
	}, true, func(x *call) error {
		r, err := x.c.CreateDBRoute(x.ctx, in)
		if err != nil {
			return cliError(err)
		}
		return x.done(r, "Created database route %s: sessions go to %s, signed in with %s. Tokens need gateway:%s.", r.Name, r.Upstream, r.SecretPath(), r.Name)
	})
	f := cmd.Flags()
	f.StringVar(&in.Upstream, "upstream", "", "HOST:PORT of the PostgreSQL server")
	f.StringVar(&in.Secret, "secret", "", "PROJECT/ENV/NAME of the secret holding the postgres:// URL")
	return cmd
}

func (x *call) printDBRoutes(rs []*tokenward.DBRoute) error {
	rows := make([][]string, len(rs))
	for i, r := range rs {
		rows[i] = []string{r.Name, r.Upstream, r.SecretPath(), "gateway:" + r.Name}
	}
	return x.list(rs, []string{"NAME", "UPSTREAM", "SECRET", "GRANT"}, rows)
}

func (m *Main) newGatewayDBListCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "list", Short: "List the database routes you administer", Example: "  tokenward gateway db list -o json", Args: noArgs,
	}, true, func(x *call) error {
		rs, err := x.c.DBRoutes(x.ctx)
		if err != nil {
			return cliError(err)
		}
		return x.printDBRoutes(rs)
	})
}

// newGatewayDBNameCommand is gateway db show or delete.
func (m *Main) newGatewayDBNameCommand(verb string) *cobra.Command {
	short := map[string]string{
		"show":   "Show one database route",
		"delete": "Delete a database route (open sessions live on; new ones are refused)",
	}[verb]
	return m.clientCommand(&cobra.Command{
		Use: verb + " NAME", Short: short, Example: "  tokenward gateway db " + verb + " pgprod", Args: exactArgs(argDBRoute),
		PreRunE: func(cmd *cobra.Command, args []string) error { return checkDBRouteName(args[0]) },
	}, true, func(x *call) error {
		if verb == "show" {
			r, err := x.c.DBRoute(x.ctx, x.args[0])
			if err != nil {
				return cliError(err)
			}
			return x.printDBRoutes([]*tokenward.DBRoute{r})
		}
		r, err := x.c.DeleteDBRoute(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		return x.done(r, "Deleted database route %s.", r.Name)
	})
}
