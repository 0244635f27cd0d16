package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/tokenward/tokenward"
)

// TestCheckNameKeepsTheRoute: a name CheckName lets through, escaped as one
// segment as the client sends it, reaches the wildcard route it was meant
// for, never a literal route beside it (the server's routes of that shape,
// from internal/httpapi).
func TestCheckNameKeepsTheRoute(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range []string{
		"GET /v1/tokens/self", "POST /v1/tokens/report-leak", "GET /v1/tokens/{id}", "POST /v1/tokens/{id}/revoke",
		"POST /v1/leases/revoke", "GET /v1/leases/{id}", "POST /v1/leases/{id}/revoke",
	} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Route", p) })
	}
	for _, tc := range []struct {
		kind              Kind
		method, pre, post string
		value             string
		want              string // the route the name must reach
	}{
		{KindToken, "GET", "/v1/tokens/", "", "deploy-bot", "GET /v1/tokens/{id}"},
		{KindToken, "GET", "/v1/tokens/", "", "tok_0123456789abcdefG", "GET /v1/tokens/{id}"},
		{KindToken, "GET", "/v1/tokens/", "", "report-leak", "GET /v1/tokens/{id}"},
		{KindToken, "GET", "/v1/tokens/", "", "self", "GET /v1/tokens/{id}"},
		{KindToken, "POST", "/v1/tokens/", "/revoke", "self", "POST /v1/tokens/{id}/revoke"},
		{KindLease, "GET", "/v1/leases/", "", "revoke", "GET /v1/leases/{id}"},
	} {
		t.Run(string(tc.kind)+" "+tc.method+" "+tc.value, func(t *testing.T) {
			if err := CheckName(tc.kind, tc.value); err != nil {
				return // refused before sending: no route at all
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.pre+url.PathEscape(tc.value)+tc.post, nil))
			if got := rec.Header().Get("Route"); got != tc.want {
				t.Errorf("CheckName accepted %q, which reached %q; want %q or a refusal", tc.value, got, tc.want)
			}
		})
	}
}

// TestCheckNameSelf: "self" as a token name or id is refused with
// EINVALID, the code of every other refusal; "Self" and "self2" are names.
func TestCheckNameSelf(t *testing.T) {
	for _, tc := range []struct {
		value   string
		refused bool
	}{{"self", true}, {"Self", false}, {"self2", false}, {"myself", false}} {
		err := CheckName(KindToken, tc.value)
		if (err != nil) != tc.refused || err != nil && tokenward.ErrorCode(err) != tokenward.EINVALID {
			t.Errorf("%q: got %v; want refused: %v (invalid)", tc.value, err, tc.refused)
		}
	}
}
