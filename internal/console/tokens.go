package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

type tokensPage struct {
	Filter, Status string
	Statuses       []string
	Tokens         []*tokenRow
	Pager          pager
}

func (p *tokensPage) title() string { return "Tokens" }

type tokenRow struct {
	*tokenward.Token
	Status string
}

// tokenStatus is active, revoked or expired.
func (c *Console) tokenStatus(t *tokenward.Token) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked"
	case !t.Active(c.Now()):
		return "expired"
	}
	return "active"
}

// tokens lists the tokens this token may see, newest first, filtered and
// paginated on the server: the browser gets one page, however many there
// are.
func (c *Console) tokens(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	p := &tokensPage{Filter: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Statuses: []string{"active", "revoked", "expired"}}
	if p.Status != "" && !slices.Contains(p.Statuses, p.Status) {
		p.Status = ""
	}
	var list api.TokenList
	if err := c.call(r, s.token, "GET", path("tokens"), nil, &list); err != nil {
		return err
	}
	needle := strings.ToLower(p.Filter)
	rows := make([]*tokenRow, 0, len(list.Tokens))
	for i := len(list.Tokens) - 1; i >= 0; i-- {
		t := list.Tokens[i]
		row := &tokenRow{Token: t, Status: c.tokenStatus(t)}
		if p.Status != "" && row.Status != p.Status {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(t.ID+" "+t.Name+" "+t.Owner+" "+string(t.Kind)), needle) {
			continue
		}
		rows = append(rows, row)
	}
	p.Tokens, p.Pager = paginate(r, rows, c.PageSize)
	c.render(w, r, http.StatusOK, "tokens", s, p)
	return nil
}

type tokenPage struct {
	*tokenRow
	Self bool // the signed-in token
}

func (p *tokenPage) title() string { return "Token " + p.Name }

func (c *Console) tokenData(r *http.Request, s *session) (*tokenPage, error) {
	var t tokenward.Token
	if err := c.call(r, s.token, "GET", path("tokens", r.PathValue("id")), nil, &t); err != nil {
		return nil, err
	}
	return &tokenPage{tokenRow: &tokenRow{Token: &t, Status: c.tokenStatus(&t)}, Self: t.ID == s.rec.TokenID}, nil
}

// confirmPage asks before an action that cannot be undone.
type confirmPage struct {
	Heading, Question, Action, Button, Cancel string
	Hidden                                    map[string]string
}

func (p *confirmPage) title() string { return p.Heading }

func (c *Console) confirmRevoke(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.tokenData(r, s)
	if err != nil {
		return err
	}
	q := "Revoke token " + p.Name + " (" + p.ID + ")? Every request made with it is refused from now on; this cannot be undone."
	if p.Self {
		q += " It is the token you are signed in with: you will be signed out."
	}
	// The anomaly is named only when ?anomaly= is an anomaly id: the link's
	// own words never reach the question above the irreversible button.
	if anomaly := r.URL.Query().Get("anomaly"); isAnomalyID(anomaly) {
		q = "Suspend the token of anomaly " + anomaly + ": " + q
	}
	c.render(w, r, http.StatusOK, "confirm", s, &confirmPage{
		Heading: "Revoke " + p.Name, Question: q, Button: "Revoke token",
		Action: Prefix + "/tokens/" + p.ID + "/revoke", Cancel: Prefix + "/tokens/" + p.ID,
	})
	return nil
}

// revoke revokes a token through the API (token.revoke: the revoke grant,
// audited) and ends its console sessions at once.
func (c *Console) revoke(w http.ResponseWriter, r *http.Request, s *session) error {
	var t tokenward.Token
	if err := c.call(r, s.token, "POST", path("tokens", r.PathValue("id"), "revoke"), nil, &t); err != nil {
		return err
	}
	if _, err := c.Sessions.DeleteTokenConsoleSessions(r.Context(), t.ID); err != nil {
		return err
	}
	if t.ID == s.rec.TokenID {
		clearCookie(w, r)
		http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, Prefix+"/tokens/"+t.ID+"?done=revoked", http.StatusSeeOther)
	return nil
}

// isAnomalyID reports whether s has the form of an anomaly id: "anm_" and
// 16 lowercase hex digits (monitor.NewRecordID).
func isAnomalyID(s string) bool {
	hex, ok := strings.CutPrefix(s, "anm_")
	if !ok || len(hex) != 16 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
