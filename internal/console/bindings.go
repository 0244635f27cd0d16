package console

import (
	"net/http"
	"strings"

	"github.com/tokenward/tokenward/internal/api"
)

// listPage is a plain table page: most list pages are a handler that
// fetches the API's list and fills one (see bindings).
type listPage struct {
	Heading, Intro string
	Columns        []string
	Rows           [][]string
	Empty          string
	Pager          pager
}

func (p *listPage) title() string { return p.Heading }

// bindings lists the OIDC trust bindings.
func (c *Console) bindings(w http.ResponseWriter, r *http.Request, s *session) error {
	var list api.BindingList
	if err := c.call(r, s.token, "GET", path("bindings"), nil, &list); err != nil {
		return err
	}
	p := &listPage{
		Heading: "OIDC bindings", Intro: "CI jobs exchange their identity token for a short-lived token through these.",
		Columns: []string{"Name", "Issuer", "Audiences", "Conditions", "Grants", "TTL", "Enabled", "Created"},
		Empty:   "No bindings.",
	}
	page, pg := paginate(r, list.Bindings, c.PageSize)
	for _, b := range page {
		var conds []string
		for _, cc := range b.Claims {
			op := cc.Op
			if op == "" {
				op = "="
			}
			conds = append(conds, cc.Claim+" "+op+" "+strings.Join(cc.Values, ", "))
		}
		enabled := "no"
		if b.Enabled {
			enabled = "yes"
		}
		p.Rows = append(p.Rows, []string{b.Name, b.Issuer, strings.Join(b.Audiences, ", "), strings.Join(conds, "; "),
			strings.Join(b.Grants, " "), b.TTL, enabled, when(b.CreatedAt)})
	}
	p.Pager = pg
	c.render(w, r, http.StatusOK, "list", s, p)
	return nil
}
