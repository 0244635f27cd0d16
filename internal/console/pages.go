package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// navItem is one entry of the navigation. A new list page is one entry
// here, one route in routes and, for a plain table, a handler that fills a
// listPage (bindings.go shows one).
type navItem struct {
	Name, Path string
}

var nav = []navItem{
	{"Overview", Prefix + "/"},
	{"Projects", Prefix + "/projects"},
	{"Tokens", Prefix + "/tokens"},
	{"Bindings", Prefix + "/bindings"},
	{"Gateway", Prefix + "/gateway"},
	{"Audit", Prefix + "/audit"},
	{"Anomalies", Prefix + "/anomalies"},
}

// route is one signed-in page or action.
type route struct {
	pattern string
	handle  func(w http.ResponseWriter, r *http.Request, s *session) error
}

func (c *Console) routes() []route {
	return []route{
		{"GET " + Prefix + "/{$}", c.overview},
		{"GET " + Prefix + "/projects", c.projects},
		{"GET " + Prefix + "/projects/{project}", show(c, "project", c.projectData)},
		{"GET " + Prefix + "/projects/{project}/{env}", c.env},
		{"GET " + Prefix + "/projects/{project}/{env}/{name}", show(c, "secret", c.secretData)},
		{"POST " + Prefix + "/projects/{project}/{env}/{name}/reveal", c.reveal},
		{"GET " + Prefix + "/tokens", c.tokens},
		{"GET " + Prefix + "/tokens/{id}", show(c, "token", c.tokenData)},
		{"GET " + Prefix + "/tokens/{id}/revoke", c.confirmRevoke},
		{"POST " + Prefix + "/tokens/{id}/revoke", c.revoke},
		{"GET " + Prefix + "/bindings", c.bindings},
		{"GET " + Prefix + "/gateway", c.gateway},
		{"GET " + Prefix + "/audit", c.audit},
		{"GET " + Prefix + "/anomalies", c.anomalies},
		{"POST " + Prefix + "/anomalies/{id}/ack", c.ack},
	}
}

// show is a page that renders template name with what load returns.
func show[T any](c *Console, name string, load func(*http.Request, *session) (T, error)) func(http.ResponseWriter, *http.Request, *session) error {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		p, err := load(r, s)
		if err != nil {
			return err
		}
		c.render(w, r, http.StatusOK, name, s, p)
		return nil
	}
}

// pageNames are the templates under templates/, each parsed with the layout.
var pageNames = []string{"signin", "error", "overview", "projects", "project", "env", "secret", "tokens", "token", "confirm", "list", "audit", "anomalies"}

var funcs = template.FuncMap{
	"when": when,
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"seg":   url.PathEscape,
	"join":  strings.Join,
}

func parsePages() map[string]*template.Template {
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/chart.html", "templates/"+name+".html"))
	}
	return out
}

// view is what the layout renders around a page's content.
type view struct {
	Title    string
	Nav      []navItem
	Active   string // the nav path of the current section
	SignedIn bool
	TokenID  string
	CSRF     string
	Flash    string
	Data     any
}

type errorPage struct {
	Title, Message string
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, data any) {
	v := &view{Title: titleOf(data), Nav: nav, Active: section(r.URL.Path), Data: data, Flash: flash(r.URL.Query().Get("done"))}
	if s != nil {
		v.SignedIn, v.TokenID, v.CSRF = true, s.rec.TokenID, s.csrf
	}
	var b strings.Builder
	if err := c.pages[name].Execute(&b, v); err != nil {
		c.Logger.Error("rendering a console page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

type titled interface{ title() string }

func titleOf(data any) string {
	if t, ok := data.(titled); ok {
		return t.title()
	}
	if e, ok := data.(*errorPage); ok {
		return e.Title
	}
	return ""
}

// section is the nav path the current page belongs to.
func section(p string) string {
	best := ""
	for _, n := range nav {
		if strings.HasPrefix(p, n.Path) && len(n.Path) > len(best) {
			best = n.Path
		}
	}
	return best
}

// flash is the message for a finished action (?done=...): fixed texts,
// never the client's words.
func flash(done string) string {
	return map[string]string{
		"revoked": "The token was revoked.",
		"acked":   "The anomaly was acknowledged.",
	}[done]
}

// maxFormBytes bounds a form's body: the console's forms hold a CSRF
// token and a few short fields.
const maxFormBytes = 8 << 10

// session wraps a signed-in page: no session, an expired one or one whose
// token the API no longer takes goes to the sign-in page; a POST needs the
// session's CSRF token.
func (c *Console) session(h func(http.ResponseWriter, *http.Request, *session) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				// The panic value is not logged: it could hold request data.
				c.Logger.Error("panic in a console page", "path", r.URL.Path)
				c.render(w, r, http.StatusInternalServerError, "error", nil, &errorPage{Title: "Error", Message: "Something went wrong; it was logged."})
			}
		}()
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		s, err := c.load(r)
		var ns errNoSession
		if errors.As(err, &ns) {
			clearCookie(w, r)
			c.toSignIn(w, r, string(ns))
			return
		}
		if err != nil {
			c.Logger.Error("loading a console session", "err", err)
			c.render(w, r, http.StatusServiceUnavailable, "error", nil, &errorPage{Title: "Unavailable", Message: "Sessions cannot be read right now; try again."})
			return
		}
		if r.Method == http.MethodPost && !s.checkCSRF(r) {
			c.render(w, r, http.StatusForbidden, "error", s, &errorPage{Title: "Refused", Message: "This form is stale or did not come from this console (CSRF check failed). Go back, reload and try again."})
			return
		}
		err = h(w, r, s)
		if err == nil {
			return
		}
		if unauthorized(err) {
			// The token was revoked, suspended or expired: every session
			// it has ends, here and on every other server.
			if _, derr := c.Sessions.DeleteTokenConsoleSessions(r.Context(), s.rec.TokenID); derr != nil {
				c.Logger.Error("ending a token's console sessions", "err", derr)
			}
			clearCookie(w, r)
			c.toSignIn(w, r, string(errSessionEnded))
			return
		}
		var ae *apiError
		if errors.As(err, &ae) {
			c.render(w, r, ae.Status, "error", s, &errorPage{Title: http.StatusText(ae.Status), Message: ae.Message})
			return
		}
		c.Logger.Error("console page failed", "path", r.URL.Path, "err", err)
		c.render(w, r, http.StatusInternalServerError, "error", s, &errorPage{Title: "Error", Message: "Something went wrong; it was logged."})
	}
}

// toSignIn shows the sign-in page for a GET (so the address stays) and
// redirects anything else to it.
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, msg string) {
	if r.Method == http.MethodGet {
		c.render(w, r, http.StatusUnauthorized, "signin", nil, &signInPage{Message: msg, Next: r.URL.RequestURI()})
		return
	}
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

// pager is one page of a list.
type pager struct {
	Page, Pages, Total, From, To int
	Prev, Next                   string
}

// paginate returns the page ?page= of items, size per page.
func paginate[T any](r *http.Request, items []T, size int) ([]T, pager) {
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max(1, (len(items)+size-1)/size)
	n = min(max(n, 1), pages)
	lo, hi := (n-1)*size, min(n*size, len(items))
	p := pager{Page: n, Pages: pages, Total: len(items), From: lo + 1, To: hi}
	if len(items) == 0 {
		p.From = 0
	}
	if n > 1 {
		p.Prev = withQuery(r, "page", strconv.Itoa(n-1))
	}
	if n < pages {
		p.Next = withQuery(r, "page", strconv.Itoa(n+1))
	}
	return items[lo:hi], p
}

// oneShot are query parameters that act once and are never carried into
// a link built from the current address: done= (a finished action's
// message) and verify= (a verification of the whole audit trail).
var oneShot = []string{"done", "verify"}

// withQuery is r's path and query with key set to value, without the
// one-shot parameters.
func withQuery(r *http.Request, key, value string) string {
	q := r.URL.Query()
	for _, k := range oneShot {
		q.Del(k)
	}
	q.Set(key, value)
	return r.URL.Path + "?" + q.Encode()
}

// when is a time as the console shows it, "—" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
