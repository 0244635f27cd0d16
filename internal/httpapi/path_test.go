package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// rawRequest sends method target as written, the way curl --path-as-is
// does: no client library cleans or re-escapes it.
func (e *env) rawRequest(tb testing.TB, token, method, target string) (int, rawErrorBody) {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: tokenward\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", method, target, token)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb rawErrorBody
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(b, &eb); err != nil {
			tb.Fatalf("%s %s: got %d %q; want a JSON error body", method, target, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, eb
}

// rawErrorBody is tokenward's error body, or the Vault API's (Errors).
type rawErrorBody struct {
	api.ErrorBody
	Errors []string `json:"errors"`
}

// TestRawPathNames: a path segment that a path cleaner would drop or read
// as another route gets 400 with the error the client gives for the same
// name (api.CheckName), never a redirect or "no such route".
func TestRawPathNames(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	generic := api.Kind("path segment")
	for _, tc := range []struct {
		method, target string
		kind           api.Kind
		value          string
	}{
		{"GET", "/v1/secrets/payments/../x", api.KindEnv, ".."},
		{"GET", "/v1/secrets/payments/./X", api.KindEnv, "."},
		{"GET", "/v1/secrets/payments/%2e%2e/X", api.KindEnv, ".."},
		{"GET", "/v1/secrets/payments/%2E%2e/X", api.KindEnv, ".."},
		{"GET", "/v1/secrets/payments/prod%2Fx/X", api.KindEnv, "prod/x"},
		{"GET", "/v1/secrets/payments//X", api.KindEnv, ""},
		{"PUT", "/v1/secrets/payments/prod/%2e", api.KindSecret, "."},
		{"GET", "/v1/secrets/payments/prod/X%2F..", api.KindSecret, "X/.."},
		{"GET", "/v1/secrets/payments/prod/", api.KindSecret, ""},
		{"GET", "/v1/secrets/payments/prod/../versions", api.KindSecret, ".."},
		{"GET", "/v1/projects/..", api.KindProject, ".."},
		{"GET", "/v1/values/%2e/prod", api.KindProject, "."},
		{"GET", "/v1/rotation/policies/payments/../X", api.KindEnv, ".."},
		{"GET", "/v1/tokens/..", api.KindToken, ".."},
		{"POST", "/v1/tokens/a%2fb/revoke", api.KindToken, "a/b"},
		{"POST", "/v1/bindings/%2e%2e/enable", api.KindBinding, ".."},
		{"POST", "/v1/anomalies/./ack", api.KindAnomaly, "."},
		{"GET", "/v1/rotation/bulk/..", api.KindBulkRotation, ".."},
		{"GET", "/v1/secrets/payments/prod/X/../../..", generic, ".."},
		{"GET", "/v1/", generic, ""},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			status, eb := e.rawRequest(t, e.admin, tc.method, tc.target)
			want := tokenward.ErrorMessage(api.CheckName(tc.kind, tc.value))
			if status != http.StatusBadRequest || eb.Error.Code != tokenward.EINVALID || eb.Error.Message != want {
				t.Errorf("got %d %s %q; want 400 invalid %q", status, eb.Error.Code, eb.Error.Message, want)
			}
		})
	}
}

// TestRawPathEveryWildcard: every name in every route's path is checked
// as the kind of name it is, not only as a path segment; a new route whose
// wildcard has no kind in pathKind fails here.
func TestRawPathEveryWildcard(t *testing.T) {
	e := MustServe(t)
	valid := map[string]string{"{project}": "payments", "{env}": "prod", "{name}": "KEY", "{id}": "x", "{mount}": "payments", "{path...}": "prod/KEY"}
	for _, rt := range e.api.Routes() {
		method, pattern, _ := strings.Cut(rt, " ")
		segs := strings.Split(pattern, "/")
		for i, seg := range segs {
			if !strings.HasPrefix(seg, "{") {
				continue
			}
			target := make([]string, len(segs))
			for j, s := range segs {
				target[j] = s
				if v, ok := valid[s]; ok {
					target[j] = v
				}
			}
			target[i] = "%2e%2e"
			t.Run(rt+" "+seg, func(t *testing.T) {
				status, eb := e.rawRequest(t, e.admin, method, strings.Join(target, "/"))
				if eb.Errors != nil {
					// The Vault API's error body (docs/vault.md).
					eb.Error.Code, eb.Error.Message = tokenward.EINVALID, eb.Errors[0]
				}
				generic := tokenward.ErrorMessage(tokenward.ValidatePathSegment("path segment", ".."))
				if status != http.StatusBadRequest || eb.Error.Code != tokenward.EINVALID || eb.Error.Message == generic {
					t.Errorf("got %d %s %q; want 400 invalid naming the kind of name", status, eb.Error.Code, eb.Error.Message)
				}
			})
		}
	}
}
