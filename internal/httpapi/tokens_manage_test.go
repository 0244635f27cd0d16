package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRevokeGrantDoesNotReachGatewayTokens: a revoke grant over secrets
// (revoke:*/*/stripe*, even revoke:*/*/*) does not reach a token whose
// grant is a gateway route, though the route's name matches the glob:
// only admin over everything covers gateway grants, as only it may grant
// them.
func TestRevokeGrantDoesNotReachGatewayTokens(t *testing.T) {
	e := MustServe(t)
	gwID, gw := e.mustToken(t, e.admin, "stripe-caller", "", "gateway:stripe-api")
	mixedID, _ := e.mustToken(t, e.admin, "mixed", "", "read:payments/prod/stripe_key", "gateway:stripe-api")
	secretID, _ := e.mustToken(t, e.admin, "secret-reader", "", "read:payments/prod/stripe_key")
	for _, grant := range []string{"revoke:*/*/stripe*", "revoke:*/*/*"} {
		_, revoker := e.mustToken(t, e.admin, "revoker-"+strings.NewReplacer(":", "-", "/", "-", "*", "x").Replace(grant), "", grant)
		for id, want := range map[string]int{gwID: 403, mixedID: 403, secretID: 200} {
			if got, b := e.do(t, revoker, "GET", "/v1/tokens/"+id, nil); got != want {
				t.Errorf("%s: GET /v1/tokens/%s: got %d %s; want %d", grant, id, got, b, want)
			}
		}
		var list struct {
			Tokens []struct{ ID string }
		}
		json.Unmarshal(e.mustDo(t, revoker, "GET", "/v1/tokens", nil, 200), &list)
		for _, tk := range list.Tokens {
			if tk.ID == gwID || tk.ID == mixedID {
				t.Errorf("%s: the token list shows %s, whose gateway grant it does not cover", grant, tk.ID)
			}
		}
		if got, _ := e.do(t, revoker, "POST", "/v1/tokens/"+gwID+"/revoke", nil); got != 403 {
			t.Errorf("%s: revoke the gateway token: got %d; want 403", grant, got)
		}
	}
	e.mustDo(t, gw, "GET", "/v1/tokens/self", nil, 200) // still alive
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+gwID+"/revoke", nil, 200)
}
