package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenward/tokenward"
)

type signInPage struct {
	Message string
	Next    string // where to go after signing in: a path under Prefix
}

func (p *signInPage) title() string { return "Sign in" }

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "signin", nil, &signInPage{Next: safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a post-sign-in destination only when it is a console
// path on this site (no open redirect), and stays one in a browser: no
// control character (a browser drops tabs and newlines), no dot segment,
// percent-encoded or not (a browser reads %2e%2e as ..), which would lead
// out of /ui/.
func safeNext(next string) string {
	u, err := url.Parse(next) // refuses control characters
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" ||
		!strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t\x7f") {
		return Prefix + "/"
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return Prefix + "/"
		}
	}
	return next
}

// signIn exchanges a token for a session. The token is checked by the API
// itself (GET /v1/tokens/self, audited as token.self), so a wrong one
// counts against the address's failed-authentication budget like any.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	if token == "" {
		c.render(w, r, http.StatusBadRequest, "signin", nil, &signInPage{Message: "Paste a tokenward token.", Next: next})
		return
	}
	var self tokenward.Token
	if err := c.call(r, token, "GET", path("tokens", "self"), nil, &self); err != nil {
		msg := "That token was refused."
		if ae, ok := err.(*apiError); ok {
			msg = "That token was refused: " + ae.Message
		}
		c.render(w, r, http.StatusUnauthorized, "signin", nil, &signInPage{Message: msg, Next: next})
		return
	}
	// The session this browser holds, if any, ends before the new one
	// starts: were it left to expire, a copy of its cookie would still
	// work after signing in afresh, even as another token.
	err := c.endPresented(r.Context(), r)
	if err == nil {
		err = c.start(r.Context(), w, r, token, self.ID)
	}
	if err != nil {
		c.Logger.Error("starting a console session", "err", err)
		c.render(w, r, http.StatusServiceUnavailable, "signin", nil, &signInPage{Message: "The session could not be stored; try again.", Next: next})
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther) // #nosec G710 -- next passed safeNext: a path under /ui/ on this site (TestSafeNext)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s *session) error {
	c.end(w, r, s)
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
	return nil
}
