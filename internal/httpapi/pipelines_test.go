package httpapi_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/api"
)

// TestPipelinesAuthorizationMatrix covers the pipelines route group with
// tokens that may and may not use it.
func TestPipelinesAuthorizationMatrix(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	_, reader := e.mustToken(t, e.admin, "reader", "", "read:payments/prod/*")
	_, writer := e.mustToken(t, e.admin, "writer", "", "write:payments/prod/*")
	_, other := e.mustToken(t, e.admin, "other", "", "admin:other/*/*")
	revokedID, revoked := e.mustToken(t, e.admin, "revoked", "", "admin:*/*/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)
	steps := []struct {
		method, path string
		who          map[string]int // principal → status
	}{
		{"GET", "/v1/projects/payments/duplicates", map[string]int{
			e.admin: 200, reader: 200, writer: 200, other: 403, revoked: 401, "": 401, "garbage": 401,
		}},
		{"GET", "/v1/projects/nosuch/duplicates", map[string]int{e.admin: 404, reader: 403}},
		{"GET", "/v1/projects/Bad_Name/duplicates", map[string]int{e.admin: 400}},
	}
	covered := map[string]bool{}
	for _, st := range steps {
		for tok, want := range st.who {
			if got, b := e.do(t, tok, st.method, st.path, nil); got != want {
				t.Errorf("%s %s: got %d %s; want %d", st.method, st.path, got, b, want)
			}
		}
		covered[st.method+" "+st.path] = true
	}
	var ours int
	for _, r := range e.api.Routes() {
		if strings.HasSuffix(r, "/duplicates") {
			ours++
		}
	}
	if ours != 1 {
		t.Fatalf("got %d duplicates routes; want 1 (extend this matrix for new pipelines routes)", ours)
	}
}

// TestDuplicates checks the groups, that a token sees only what it may
// read, and that the answer holds no value in any form.
func TestDuplicates(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev", "staging"}}, 201)
	const shared, other = "sk_live_SHAREDvalue_0123456789", "sk_test_OTHERvalue_9876543210"
	for path, v := range map[string]string{
		"prod/STRIPE_KEY": shared, "dev/STRIPE_KEY": shared, "staging/OLD_KEY": shared,
		"staging/STRIPE_KEY": other, "prod/DB_URL": other,
		"dev/UNIQUE": "unique-value-1234",
	} {
		e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/"+path, map[string]any{"value": v}, 200)
	}
	// A value shared with another project counts too; a group only of
	// another project's secrets is not this project's business.
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "billing", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/billing/prod/STRIPE_KEY", map[string]any{"value": shared}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/billing/prod/A", map[string]any{"value": "billing-only-value"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/billing/prod/B", map[string]any{"value": "billing-only-value"}, 200)
	_, prodReader := e.mustToken(t, e.admin, "prod-reader", "", "read:payments/prod/*")
	_, keyReader := e.mustToken(t, e.admin, "key-reader", "", "read:payments/*/STRIPE_KEY")
	_, bothReader := e.mustToken(t, e.admin, "both-reader", "", "read:payments/prod/*", "read:billing/prod/*")
	for _, tc := range []struct {
		name, token string
		want        string
	}{
		{"admin", e.admin, `[["billing/prod/STRIPE_KEY","payments/dev/STRIPE_KEY","payments/prod/STRIPE_KEY","payments/staging/OLD_KEY"],["payments/prod/DB_URL","payments/staging/STRIPE_KEY"]]`},
		{"prod reader", prodReader, `[]`},
		{"key reader", keyReader, `[["payments/dev/STRIPE_KEY","payments/prod/STRIPE_KEY"]]`},
		{"payments and billing prod reader", bothReader, `[["billing/prod/STRIPE_KEY","payments/prod/STRIPE_KEY"]]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.mustDo(t, tc.token, "GET", "/v1/projects/payments/duplicates", nil, 200)
			var resp api.DuplicatesResponse
			if err := json.Unmarshal(b, &resp); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(resp.Groups)
			if string(got) != tc.want {
				t.Errorf("groups: got %s; want %s", got, tc.want)
			}
			for _, v := range []string{shared, other} {
				for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))} {
					if strings.Contains(string(b), form) {
						t.Errorf("answer holds a value (%.6s...)", form)
					}
				}
			}
			// Only project, groups: no fingerprints.
			var raw map[string]json.RawMessage
			json.Unmarshal(b, &raw)
			if len(raw) != 2 {
				t.Errorf("got fields %v; want only project and groups", raw)
			}
		})
	}
}
