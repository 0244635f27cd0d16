//go:build !tokenward_client

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
)

// upstream NAME starts an upstream API on loopback for the gateway
// scripts: it appends each request's method, path, query and
// Authorization to $WORK/NAME.log, and answers with the Authorization it
// got (an upstream that echoes the credential). $UPSTREAM_URL is its URL.
func cmdUpstream(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: upstream NAME")
	}
	log := ts.MkAbs(args[0] + ".log")
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%s %s ?%s auth=%s fwd=%s\n", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-Forwarded-For"))
			f.Close()
		}
		mu.Unlock()
		io.WriteString(w, "upstream saw: "+r.Header.Get("Authorization")+"\n")
	}))
	ts.Defer(srv.Close)
	ts.Setenv("UPSTREAM_URL", srv.URL)
}
