//go:build !tokenward_client

package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
)

// cmdOIDC is the testscript command "oidc": a fake OIDC issuer (and a fake
// GitHub Actions runner) inside the test process, on loopback, for the real
// binary to verify against.
//
//	oidc issuer                          start the issuer; sets ISSUER_URL, writes $WORK/jwks.json
//	oidc jwt github|gitlab DEST [k=v...] sign a GitHub- or GitLab-shaped identity token into DEST:
//	                                     a file, or env:VAR. k=v overrides a claim, -k drops it,
//	                                     @age=DURATION issues it that long ago
//	oidc runner [k=v...]                 serve ACTIONS_ID_TOKEN_REQUEST_URL like a GitHub runner,
//	                                     signing a fresh GitHub-shaped token per request; sets
//	                                     GITHUB_ACTIONS and the ACTIONS_ID_TOKEN_REQUEST_* variables
//	oidc env VAR FILE                    set VAR to FILE's content, trimmed
func cmdOIDC(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: oidc issuer|jwt|runner|env ...")
	}
	sub, ok := map[string]func(*testscript.TestScript, bool, []string){
		"issuer": cmdOIDCIssuer, "jwt": cmdOIDCJWT, "runner": cmdOIDCRunner, "env": cmdOIDCEnv,
	}[args[0]]
	if !ok {
		ts.Fatalf("oidc %s: unknown subcommand", args[0])
	}
	sub(ts, neg, args[1:])
}

// scriptTB lets oidctest, written for tests, run inside a script: failures
// fail the script, cleanups run when it ends.
type scriptTB struct {
	testing.TB // nil: only the methods below are used
	ts         *testscript.TestScript
}

func (s scriptTB) Helper()                           {}
func (s scriptTB) Fatal(args ...any)                 { s.ts.Fatalf("%s", fmt.Sprint(args...)) }
func (s scriptTB) Fatalf(format string, args ...any) { s.ts.Fatalf(format, args...) }
func (s scriptTB) Cleanup(fn func())                 { s.ts.Defer(fn) }
func (s scriptTB) TempDir() string {
	dir, err := os.MkdirTemp(s.ts.Getenv("WORK"), "tmp")
	if err != nil {
		s.ts.Fatalf("%v", err)
	}
	return dir
}

// scriptIssuers maps a script (by its work directory) to its issuer.
var scriptIssuers sync.Map

func scriptIssuer(ts *testscript.TestScript) *oidctest.Issuer {
	v, ok := scriptIssuers.Load(ts.Getenv("WORK"))
	if !ok {
		ts.Fatalf("run oidcissuer first")
	}
	return v.(*oidctest.Issuer)
}

func cmdOIDCIssuer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: oidcissuer")
	}
	iss := oidctest.NewIssuer(scriptTB{ts: ts})
	work := ts.Getenv("WORK")
	scriptIssuers.Store(work, iss)
	ts.Defer(func() { scriptIssuers.Delete(work) })
	ts.Setenv("ISSUER_URL", iss.URL)
	if err := os.WriteFile(filepath.Join(work, "jwks.json"), iss.JWKS(), 0o600); err != nil {
		ts.Fatalf("%v", err)
	}
}

// claimsFor returns the claims of kind with the overrides applied.
func claimsFor(ts *testscript.TestScript, iss *oidctest.Issuer, kind, aud string, overrides []string) map[string]any {
	now := time.Now()
	for _, o := range overrides {
		if d, ok := strings.CutPrefix(o, "@age="); ok {
			age, err := time.ParseDuration(d)
			if err != nil {
				ts.Fatalf("@age: %v", err)
			}
			now = now.Add(-age)
		}
	}
	var c map[string]any
	switch kind {
	case "github":
		c = oidctest.GitHubClaims(iss.URL, aud, now)
	case "gitlab":
		c = oidctest.GitLabClaims(iss.URL, aud, now)
	default:
		ts.Fatalf("token kind %q: want github or gitlab", kind)
	}
	// A fresh jti each time: the same script may sign several tokens in one
	// nanosecond-poor clock tick.
	var r [8]byte
	rand.Read(r[:])
	c["jti"] = hex.EncodeToString(r[:])
	for _, o := range overrides {
		switch {
		case strings.HasPrefix(o, "@age="):
		case strings.HasPrefix(o, "-"):
			delete(c, o[1:])
		default:
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				ts.Fatalf("claim override %q: want k=v, -k or @age=D", o)
			}
			c[k] = v
		}
	}
	return c
}

func cmdOIDCJWT(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: oidcjwt github|gitlab FILE|env:VAR [k=v | -k | @age=D]...")
	}
	iss := scriptIssuer(ts)
	jwt := iss.Sign(scriptTB{ts: ts}, claimsFor(ts, iss, args[0], "tokenward", args[2:]))
	if v, ok := strings.CutPrefix(args[1], "env:"); ok {
		ts.Setenv(v, jwt)
		return
	}
	if err := os.WriteFile(ts.MkAbs(args[1]), []byte(jwt+"\n"), 0o600); err != nil {
		ts.Fatalf("%v", err)
	}
}

func cmdOIDCRunner(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: oidcrunner [k=v...]")
	}
	iss := scriptIssuer(ts)
	var r [16]byte
	rand.Read(r[:])
	reqToken := hex.EncodeToString(r[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got := strings.TrimPrefix(req.Header.Get("Authorization"), "bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(reqToken)) != 1 {
			http.Error(w, "bad request token", http.StatusUnauthorized)
			return
		}
		aud := req.URL.Query().Get("audience")
		if aud == "" {
			http.Error(w, "no audience", http.StatusBadRequest)
			return
		}
		jwt := iss.Sign(scriptTB{ts: ts}, claimsFor(ts, iss, "github", aud, args))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"value": jwt})
	}))
	ts.Defer(srv.Close)
	ts.Setenv("GITHUB_ACTIONS", "true")
	ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", srv.URL+"/idtoken?api-version=2.0")
	ts.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", reqToken)
}

func cmdOIDCEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: oidcenv VAR FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}
