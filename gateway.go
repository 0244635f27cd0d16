package tokenward

import "time"

// GatewayRoute is one route of the credential-injecting gateway
// (internal/gateway): a call to /gw/<Name>/<path> by a token granted
// "gateway:<Name>" is checked against Allow and forwarded to Upstream with
// the CURRENT value of Secret injected as Inject says. The route holds
// secret paths, never values. internal/gateway.Compile validates it.
type GatewayRoute struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream"` // http(s)://host[:port][/base]
	// Secret is the project/env/name injected (the password for basic).
	Secret string `json:"secret"`
	// UserSecret is the project/env/name of the user name for basic.
	UserSecret string `json:"user_secret,omitempty"`
	// Inject is how: "header:NAME=TEMPLATE", "query:PARAM=TEMPLATE" (a
	// TEMPLATE holds {{value}}) or "basic".
	Inject string `json:"inject"`
	// Allow are the calls let through, "METHOD /path/pattern" each;
	// everything else is refused.
	Allow []string `json:"allow"`
	// Rate bounds each token's calls through the route, "N/s", "N/m" or
	// "N/h"; empty: no bound of the route's own.
	Rate string `json:"rate,omitempty"`
	// AllowNets are address ranges (CIDR) the upstream may resolve to
	// although the gateway refuses them by default (loopback, private,
	// link-local, metadata).
	AllowNets []string `json:"allow_nets,omitempty"`
	// CABundle is PEM: the roots the upstream's certificate must chain to
	// instead of the system's.
	CABundle string `json:"ca_bundle,omitempty"`
	// Timeout bounds waiting for the upstream's response headers; zero: the
	// gateway's default.
	Timeout   time.Duration `json:"timeout,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	CreatedBy string        `json:"created_by,omitempty"`
}

// SecretPaths returns the paths of every secret r injects.
func (r *GatewayRoute) SecretPaths() []string {
	if r.UserSecret != "" {
		return []string{r.Secret, r.UserSecret}
	}
	return []string{r.Secret}
}
