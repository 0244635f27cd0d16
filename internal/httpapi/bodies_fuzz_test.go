package httpapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/oidc"
)

// secretFields are the request fields that carry a secret: a value, a
// scanner key, an identity token, a token reported as leaked. The JSON
// decoder matches field names without regard to case, so neither does
// the check.
var secretFields = []string{"value", "key", "jwt", "token"}

// bodyRoutes lists every route that reads a JSON body, from the server's
// own route table (so a new route is fuzzed without editing this file),
// with its path parameters filled in with names that exist.
func bodyRoutes(e *monEnv, tokenID string) []string {
	fill := strings.NewReplacer("{project}", "payments", "{env}", "prod", "{name}", "API_KEY", "{id}", tokenID, "{mount}", "payments", "{path...}", "prod/API_KEY")
	var out []string
	for _, r := range e.api.Routes() {
		method, pattern, _ := strings.Cut(r, " ")
		if r == "POST /v1/auth/token/revoke-self" {
			continue // reads no body, and would revoke the fuzzer's token
		}
		if method == "POST" || method == "PUT" || method == "PATCH" {
			out = append(out, method+" "+fill.Replace(pattern))
		}
	}
	slices.Sort(out)
	return out
}

// FuzzRequestBodies sends arbitrary bodies to every route that decodes
// one, on a server with every feature on: the answer is a success or a
// client error, never a server error (no decoding path panics or falls
// through to 500), an error's message is bounded whatever the body (it is
// also the audit entry's reason), and no secret the body carries (a value,
// key, JWT or token) comes back in the answer or reaches the audit trail.
func FuzzRequestBodies(f *testing.F) {
	e := mustServeMonitor(f)
	enableRotation(f, e.env, nil)
	enableDynamic(f, e.env)
	e.core.OIDC = &core.OIDC{Store: e.core.Store.(core.BindingStore), Verifier: oidc.NewVerifier(), MaxTTL: time.Hour}
	e.mustDo(f, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	e.mustDo(f, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": "sk_live_seed0123456789"}, 200)
	tokenID, _ := e.mustToken(f, e.admin, "victim", "", "read:payments/prod/*")
	routes := bodyRoutes(e, tokenID)
	if len(routes) < 15 {
		f.Fatalf("got %d routes with a body; want every POST and PUT route", len(routes))
	}
	for i := range routes {
		f.Add(uint8(i), `{}`)
	}
	for _, b := range []string{
		`{"value":"hunter2-fuzz-secret","owner":"x","tags":["a"],"if_version":1}`,
		`{"value":"hunter2-fuzz-secret","expires_at":"2026-13-01T00:00:00Z"}`,
		`{"VALUE":"hunter2-fuzz-secret","Value":"other-secret-1234"}`,
		`{"value":"\xff\xfehunter2"}`,
		`{"name":"new","environments":["dev","dev"]}`,
		`{"name":"t","grants":["read:payments/prod/*"],"ttl":"-1h"}`,
		`{"key":"hunter2-fuzz-secret"}`,
		`{"jwt":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.","binding":"nope"}`,
		`{"token":"twa_hunter2fuzzsecret0000000000000000000000000000"}`,
		`{"rotator":"random","every":"1d","config":{"template":"{{rand 8}}"}}`,
		`{"all":true,"dry_run":true,"concurrency":-1}`,
		`{"retention":"99999999999d","dry_run":true}`,
		`{"to":-1}`,
		`{"value":"a"} {"value":"b"}`,
		`[`,
		`null`,
	} {
		for i := range routes {
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		method, path, _ := strings.Cut(routes[int(route)%len(routes)], " ")
		e.mu.Lock()
		before := len(e.audit)
		e.mu.Unlock()
		status, b := e.doRaw(t, e.admin, method, path, body)
		if status >= 500 {
			t.Fatalf("%s %s %q: got %d %s; want no server error", method, path, body, status, b)
		}
		var answer struct {
			api.ErrorBody
			Errors []string `json:"errors"` // the Vault API's error body
		}
		err := json.Unmarshal(b, &answer)
		if len(answer.Errors) > 0 {
			answer.Error.Message = answer.Errors[0]
		}
		if status >= 400 && (err != nil || len(answer.Error.Message) > 300) {
			t.Fatalf("%s %s: got %d %.400s; want an error body with a bounded message", method, path, status, b)
		}
		e.mu.Lock()
		trail, _ := json.Marshal(e.audit[before:])
		e.mu.Unlock()
		for _, s := range bodySecrets(body) {
			if strings.Contains(string(b), s) {
				t.Fatalf("%s %s: got %d %s; want the secret %q not echoed", method, path, status, b, s)
			}
			if strings.Contains(string(trail), s) {
				t.Fatalf("%s %s: audit trail %s holds the secret %q", method, path, trail, s)
			}
		}
	})
}

// doRaw sends body as it is, as JSON unless the method is GET, and
// returns the answer's status and body.
func (e *env) doRaw(tb testing.TB, token, method, path, body string) (int, []byte) {
	tb.Helper()
	ct := "application/json"
	if method == "GET" {
		ct = ""
	}
	return e.send(tb, token, method, path, ct, strings.NewReader(body))
}

// bodySecrets returns the strings in body's secret fields long enough to
// tell apart from the names, ids and times an answer holds by right, and
// found nowhere else in the body (a string that is also a name may come
// back as that name).
func bodySecrets(body string) []string {
	var v any
	if json.Unmarshal([]byte(body), &v) != nil {
		return nil
	}
	var secrets, others []string
	var walk func(v any, secret bool)
	walk = func(v any, secret bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				others = append(others, k)
				walk(x, slices.ContainsFunc(secretFields, func(f string) bool { return strings.EqualFold(f, k) }))
			}
		case []any:
			for _, x := range v {
				walk(x, false)
			}
		case string:
			if secret {
				secrets = append(secrets, v)
			} else {
				others = append(others, v)
			}
		}
	}
	walk(v, false)
	var out []string
	for _, s := range secrets {
		if len(s) < 12 || slices.ContainsFunc(others, func(o string) bool { return strings.Contains(o, s) }) {
			continue
		}
		out = append(out, s)
	}
	return out
}
