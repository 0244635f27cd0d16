// Package console is tokenward's web console, served at /ui: server-rendered
// pages over the same API every client uses. Every page and action is a
// request to the API handler, in process, with the signed-in token — the
// same authentication, grants, rate limits and audit as any client, never a
// shortcut around them. Sessions live in the database
// (tokenward.ConsoleSessionStore), so several servers act as one.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/tokenward/tokenward"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/ui"

// Defaults of the session lifetimes.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
)

// Console serves the web console. Create it with New.
type Console struct {
	// API is the API handler (httpapi.Server) every page and action goes
	// through.
	API      http.Handler
	Sessions tokenward.ConsoleSessionStore
	Logger   *slog.Logger
	Now      func() time.Time
	// IdleTimeout ends a session not used for that long, MaxAge any
	// session that old.
	IdleTimeout, MaxAge time.Duration
	// PageSize is the number of rows on a list page.
	PageSize int

	pages map[string]*template.Template
	mux   *http.ServeMux
	csrf  *http.CrossOriginProtection
}

// New returns a console over api and sessions, ready to serve.
func New(api http.Handler, sessions tokenward.ConsoleSessionStore, logger *slog.Logger) *Console {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{
		API: api, Sessions: sessions, Logger: logger.WithGroup("console"), Now: time.Now,
		IdleTimeout: DefaultIdleTimeout, MaxAge: DefaultMaxAge, PageSize: 50,
		pages: parsePages(), csrf: http.NewCrossOriginProtection(),
	}
	static, _ := fs.Sub(staticFS, "static")
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", staticHandler(static)))
	mux.HandleFunc("GET "+Prefix+"/signin", c.signInPage)
	mux.HandleFunc("POST "+Prefix+"/signin", c.signIn)
	mux.HandleFunc("POST "+Prefix+"/signout", c.session(c.signOut))
	for _, p := range c.routes() {
		mux.HandleFunc(p.pattern, c.session(p.handle))
	}
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", nil, &errorPage{Title: "Not found", Message: "There is no such page."})
	})
	c.mux = mux
	return c
}

// ServeHTTP serves every request under Prefix with the console's security
// headers; state-changing requests from another origin are refused before
// any handler runs (http.CrossOriginProtection: Sec-Fetch-Site, then Origin
// against Host), and each handler checks the session's CSRF token too.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if err := c.csrf.Check(r); err != nil {
		c.render(w, r, http.StatusForbidden, "error", nil, &errorPage{Title: "Refused", Message: "This request came from another site; it was refused."})
		return
	}
	if r.URL.Path == Prefix {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	c.mux.ServeHTTP(w, r)
}

func staticHandler(static fs.FS) http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}
