package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// gateway lists the gateway's routes, HTTP (/gw/<route>/…) and PostgreSQL
// (--gateway-db-listen), that the token may see. A kind the token may not
// list (a just-in-time token and database routes) is left out, and a kind
// this server does not run is named in the introduction, not an error.
func (c *Console) gateway(w http.ResponseWriter, r *http.Request, s *session) error {
	var notes []string
	list := func(target string, out any) error {
		err := c.call(r, s.token, "GET", target, nil, out)
		var ae *apiError
		switch {
		case err == nil, forbidden(err):
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
			notes = append(notes, strings.TrimSuffix(ae.Message, ".")+".")
			return nil
		}
		return err
	}
	var httpRoutes api.GatewayRouteList
	if err := list(path("gateway", "routes"), &httpRoutes); err != nil {
		return err
	}
	var dbRoutes api.DBRouteList
	if err := list(path("gateway", "db", "routes"), &dbRoutes); err != nil {
		return err
	}
	rows := make([][]string, 0, len(httpRoutes.Routes)+len(dbRoutes.Routes))
	for _, rt := range httpRoutes.Routes {
		secret := rt.Secret
		if rt.UserSecret != "" {
			secret = rt.UserSecret + " : " + rt.Secret
		}
		rate := rt.Rate
		if rate == "" {
			rate = "—"
		}
		rows = append(rows, []string{"HTTP", rt.Name, rt.Upstream, secret, rt.Inject, strings.Join(rt.Allow, "; "), rate, when(rt.CreatedAt)})
	}
	for _, rt := range dbRoutes.Routes {
		rows = append(rows, []string{"PostgreSQL", rt.Name, rt.Upstream, rt.SecretPath(), "sign-in with the secret's URL", "every statement", "—", when(rt.CreatedAt)})
	}
	p := &listPage{
		Heading: "Gateway routes",
		Intro: strings.Join(append([]string{"Jobs call these upstreams through tokenward with their own token (grant gateway:<route>); " +
			"tokenward adds the upstream credential, which the job never holds."}, notes...), " "),
		Columns: []string{"Kind", "Name", "Upstream", "Secret", "Injection", "Allowed", "Rate", "Created"},
		Empty:   "No gateway routes you may see.",
	}
	page, pg := paginate(r, rows, c.PageSize)
	p.Rows, p.Pager = page, pg
	c.render(w, r, http.StatusOK, "list", s, p)
	return nil
}

// forbidden reports whether err is the API refusing the action (403), as
// opposed to the token itself.
func forbidden(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == tokenward.EFORBIDDEN
}
