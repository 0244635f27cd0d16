//go:build !tokenward_client

package main

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/tokenward/tokenward/internal/console"
)

// withConsole serves the web console (internal/console) at /ui beside the
// API; the console makes every request of its own through api.
func withConsole(api http.Handler, db storage, logger *slog.Logger) http.Handler {
	ui := console.New(api, db, logger)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == console.Prefix || strings.HasPrefix(r.URL.Path, console.Prefix+"/") {
			ui.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
