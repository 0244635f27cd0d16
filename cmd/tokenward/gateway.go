package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/gateway"
)

// argRoute is a gateway route's NAME argument.
var argRoute = argument{"NAME", "github", 0}

// newGatewayCmd is the gateway's parent command: a plain group of each
// kind of gateway's commands (route: the HTTP gateway; db, gateway_db.go:
// the PostgreSQL one).
func (m *Main) newGatewayCmd() *cobra.Command {
	return group("gateway", "The credential-injecting gateway: pipelines call upstream APIs and databases through tokenward and never hold the upstream credential",
		m.newGatewayRouteCommand(), m.newGatewayDBCmd())
}

func (m *Main) newGatewayRouteCommand() *cobra.Command {
	return group("route", "Manage the HTTP gateway's routes (docs/gateway.md)",
		m.newRouteCreateCommand(), m.newRouteListCommand(), m.newRouteShowCommand(), m.newRouteDeleteCommand())
}

func (m *Main) newRouteCreateCommand() *cobra.Command {
	var in api.GatewayRoute
	var caFile string
	var timeout time.Duration
	cmd := m.clientCommand(&cobra.Command{
		Use:   "create NAME --upstream URL --secret PROJECT/ENV/NAME --inject STYLE --allow 'METHOD /path'... [--rate N/s] [--allow-net CIDR]... [--ca-file PEM] [--timeout 30s]",
		Short: "Route calls to /gw/NAME/… to an upstream API, with a secret injected",
		Long: `Calls by a token granted gateway:NAME to <server>/gw/NAME/<path> are checked against the allow
rules (METHOD /path/pattern; '*' matches within one segment, a final '**' one or more segments;
everything else is refused), stripped of the caller's credential, given the CURRENT value of the
secret as --inject says, and forwarded to the upstream.

--inject is header:NAME=TEMPLATE (TEMPLATE holds {{value}} once), query:PARAM[=TEMPLATE], or
basic (the password is --secret, the user --user-secret). The upstream's address may not be
loopback, private, link-local or a metadata address unless --allow-net names its range. You need
admin on every secret the route injects.`,
		Example: `  tokenward gateway route create github --upstream https://api.github.com \
    --secret acme/prod/GITHUB_TOKEN --inject 'header:Authorization=Bearer {{value}}' \
    --allow 'GET /repos/acme/*' --allow 'POST /repos/acme/*/issues' --rate 10/s`,
		Args: exactArgs(argRoute),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			in.Name = args[0]
			if timeout < 0 {
				return usageError("--timeout must be positive")
			}
			if timeout > 0 {
				in.Timeout = timeout.String()
			}
			if caFile != "" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return usageError("--ca-file: %v", err)
				}
				in.CABundle = string(b)
			}
			r := &tokenward.GatewayRoute{Name: in.Name, Upstream: in.Upstream, Secret: in.Secret, UserSecret: in.UserSecret, Inject: in.Inject,
				Allow: in.Allow, Rate: in.Rate, AllowNets: in.AllowNets, CABundle: in.CABundle, Timeout: timeout}
			if _, err := gateway.Compile(r); err != nil {
				return usageError("%s", tokenward.ErrorMessage(err))
			}
			return nil
		},
	}, true, func(x *call) error {
		r, err := x.c.CreateGatewayRoute(x.ctx, in)
		if err != nil {
			return cliError(err)
		}
		return x.done(r, "Created route %s: /gw/%s/… → %s with %s injected (%s).", r.Name, r.Name, r.Upstream, r.Secret, r.Inject)
	})
	f := cmd.Flags()
	f.StringVar(&in.Upstream, "upstream", "", "the upstream API's base URL, http(s)://host[:port][/base]")
	f.StringVar(&in.Secret, "secret", "", "PROJECT/ENV/NAME of the credential (the password for basic)")
	f.StringVar(&in.UserSecret, "user-secret", "", "PROJECT/ENV/NAME of the user name, for --inject basic")
	f.StringVar(&in.Inject, "inject", "", "header:NAME=TEMPLATE, query:PARAM[=TEMPLATE] or basic")
	f.StringArrayVar(&in.Allow, "allow", nil, "a call let through, 'METHOD /path/pattern' (repeatable; METHOD may be *)")
	f.StringVar(&in.Rate, "rate", "", "each token's calls through the route, N/s, N/m or N/h")
	f.StringArrayVar(&in.AllowNets, "allow-net", nil, "an address range (CIDR) the upstream may be in although refused by default (repeatable; needs admin:*/*/*)")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the roots the upstream's certificate must chain to (default: the system's)")
	f.DurationVar(&timeout, "timeout", 0, "how long to wait for the upstream's response headers (default 30s)")
	return cmd
}

func (x *call) printRoutes(rs []*api.GatewayRoute) error {
	rows := make([][]string, len(rs))
	for i, r := range rs {
		rows[i] = []string{r.Name, r.Upstream, r.Secret, r.Inject, strings.Join(r.Allow, ", "), r.Rate}
	}
	return x.list(rs, []string{"NAME", "UPSTREAM", "SECRET", "INJECT", "ALLOW", "RATE"}, rows)
}

func (m *Main) newRouteListCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "list", Short: "List the routes you may use or administer", Example: "  tokenward gateway route list -o json", Args: noArgs,
	}, true, func(x *call) error {
		rs, err := x.c.GatewayRoutes(x.ctx)
		if err != nil {
			return cliError(err)
		}
		return x.printRoutes(rs)
	})
}

func (m *Main) newRouteShowCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "show NAME", Short: "Show one route", Example: "  tokenward gateway route show github", Args: exactArgs(argRoute),
	}, true, func(x *call) error {
		r, err := x.c.GatewayRoute(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		return x.detail(r, "name", r.Name, "upstream", r.Upstream, "secret", r.Secret, "user secret", r.UserSecret, "inject", r.Inject,
			"allow", strings.Join(r.Allow, "\n"), "rate", r.Rate, "allow net", strings.Join(r.AllowNets, " "),
			"ca bundle", map[bool]string{true: "custom", false: "system"}[r.CABundle != ""], "timeout", r.Timeout,
			"created", r.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), "created by", r.CreatedBy)
	})
}

func (m *Main) newRouteDeleteCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "delete NAME", Short: "Delete a route: calls through it are refused from the next one", Example: "  tokenward gateway route delete github", Args: exactArgs(argRoute),
	}, true, func(x *call) error {
		r, err := x.c.DeleteGatewayRoute(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		return x.done(r, "Deleted route %s.", r.Name)
	})
}

// gatewayRecipe is what common tools of one API read to find it and
// authenticate: `run --gateway ROUTE` points urlVars at the route and puts
// the job's tokenward token in tokenVars, when the route's upstream is on
// host (and its path ends in path, when set).
type gatewayRecipe struct {
	host, path string
	urlVars    []string
	tokenVars  []string
}

var gatewayRecipes = []gatewayRecipe{
	{host: "api.github.com", urlVars: []string{"GITHUB_API_URL"}, tokenVars: []string{"GITHUB_TOKEN", "GH_TOKEN"}},
	{host: "gitlab.com", path: "/api/v4", urlVars: []string{"CI_API_V4_URL"}, tokenVars: []string{"GITLAB_TOKEN", "CI_JOB_TOKEN"}},
	{host: "api.openai.com", path: "/v1", urlVars: []string{"OPENAI_BASE_URL"}, tokenVars: []string{"OPENAI_API_KEY"}},
}

// gatewayEnv returns the variables `run --gateway` sets for routes:
// TOKENWARD_GATEWAY_<ROUTE>_URL for every route, and a recipe's variables
// when the route's upstream is an API it knows. The token is the job's
// own tokenward token (the one the call uses), never an upstream
// credential.
func gatewayEnv(ctx context.Context, c gatewayRouteReader, addr, token string, routes []string) ([]string, error) {
	var env []string
	// setBy is the route that set each variable: two routes to one API
	// must not leave the tools' URL to whichever came last.
	setBy := map[string]string{}
	for _, name := range routes {
		if err := tokenward.ValidateRouteName(name); err != nil {
			return nil, usageError("--gateway: %s", tokenward.ErrorMessage(err))
		}
		urlVar := "TOKENWARD_GATEWAY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_URL"
		if _, ok := setBy[urlVar]; ok {
			continue // the same route again
		}
		setBy[urlVar] = name
		r, err := c.GatewayRoute(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("gateway route %s: %w", name, err)
		}
		base := strings.TrimRight(addr, "/") + "/gw/" + name
		env = append(env, urlVar+"="+base)
		u, err := url.Parse(r.Upstream)
		if err != nil {
			continue
		}
		for _, rc := range gatewayRecipes {
			if !strings.EqualFold(u.Hostname(), rc.host) || (rc.path != "" && strings.TrimSuffix(u.Path, "/") != rc.path) {
				continue
			}
			for _, v := range append(slices.Clone(rc.urlVars), rc.tokenVars...) {
				if other, ok := setBy[v]; ok {
					return nil, usageError("--gateway %s and --gateway %s both set %s (routes to the same API): give one of them", other, name, v)
				}
				setBy[v] = name
			}
			for _, v := range rc.urlVars {
				env = append(env, v+"="+base)
			}
			for _, v := range rc.tokenVars {
				env = append(env, v+"="+token)
			}
		}
	}
	return env, nil
}

// gatewayRouteReader is the client's power run --gateway needs.
type gatewayRouteReader interface {
	GatewayRoute(ctx context.Context, name string) (*api.GatewayRoute, error)
}
