package httpapi_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tokenward/tokenward/internal/api"
)

// TestRevokeTokenCascade: POST /v1/tokens/{id}/revoke with {"cascade":
// true} revokes the token and every token it made, transitively, each
// audited (cascade_from on the descendants'); without the body, or with
// cascade false, only the token, answered as before; strict body; a leak
// report never cascades.
func TestRevokeTokenCascade(t *testing.T) {
	e := mustServeMonitor(t) // a leak report needs monitoring on
	var hookMu sync.Mutex
	var hooked []string
	e.core.TokenRevoked = func(_ context.Context, id string) {
		hookMu.Lock()
		defer hookMu.Unlock()
		hooked = append(hooked, id)
	}
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	parent, parentSecret := e.mustToken(t, e.admin, "parent", "", "read:payments/*/*")
	child, childSecret := e.mustToken(t, parentSecret, "child", "", "read:payments/prod/*")
	grandchild, grandchildSecret := e.mustToken(t, childSecret, "grandchild", "", "read:payments/prod/STRIPE_KEY")
	sibling, siblingSecret := e.mustToken(t, e.admin, "sibling", "", "read:payments/*/*")
	nephew, _ := e.mustToken(t, siblingSecret, "nephew", "", "read:payments/prod/*")
	revoked := func(id string) bool {
		t.Helper()
		tok, err := e.core.Store.Token(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return !tok.RevokedAt.IsZero()
	}

	// Strict body: unknown fields, the wrong type, no JSON: refused, nothing revoked.
	for _, tc := range []struct {
		ct, body string
		want     int
		msg      string
	}{
		{"application/json", `{"cascade": true, "force": true}`, 400, `unknown field \"force\"`},
		{"application/json", `{"cascade": "yes"}`, 400, `field \"cascade\" must be bool`},
		{"application/json", `{"cascade": true} {}`, 400, "data after the request object"},
		{"text/plain", `{"cascade": true}`, 415, "application/json"},
	} {
		got, b := e.send(t, e.admin, "POST", "/v1/tokens/"+parent+"/revoke", tc.ct, strings.NewReader(tc.body))
		if got != tc.want || !strings.Contains(string(b), tc.msg) {
			t.Errorf("body %s (%s): got %d %s; want %d with %q", tc.body, tc.ct, got, b, tc.want, tc.msg)
		}
	}
	// A child may not take its creator's tree down: 403, nothing revoked.
	e.mustDo(t, childSecret, "POST", "/v1/tokens/"+parent+"/revoke", map[string]any{"cascade": true}, 403)
	for _, id := range []string{parent, child, grandchild} {
		if revoked(id) {
			t.Fatalf("token %s revoked by a refused request", id)
		}
	}
	// A leak report revokes the token reported, never its tree.
	e.mustDo(t, "", "POST", "/v1/tokens/report-leak", map[string]any{"token": grandchildSecret}, 202)
	if !revoked(grandchild) || revoked(child) || revoked(parent) {
		t.Fatal("report-leak: want only the reported token revoked")
	}
	// cascade false: as without a body, the token's record alone.
	b := e.mustDo(t, e.admin, "POST", "/v1/tokens/"+nephew+"/revoke", map[string]any{"cascade": false}, 200)
	if strings.Contains(string(b), `"revoked"`) {
		t.Errorf("cascade false: got %s; want no revoked list", b)
	}

	before := len(e.entries("token.revoke"))
	hookMu.Lock()
	hooked = nil
	hookMu.Unlock()
	b = e.mustDo(t, e.admin, "POST", "/v1/tokens/parent/revoke", map[string]any{"cascade": true}, 200)
	var resp api.RevokeTokenResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Token == nil || resp.ID != parent || resp.RevokedAt.IsZero() {
		t.Fatalf("got %s; want the parent's record, revoked", b)
	}
	// The grandchild was revoked by the leak report: not again.
	if want := []string{parent, child}; !slices.Equal(resp.Revoked, want) {
		t.Errorf("revoked: got %v; want %v", resp.Revoked, want)
	}
	for id, want := range map[string]bool{parent: true, child: true, grandchild: true, sibling: false} {
		if got := revoked(id); got != want {
			t.Errorf("token %s revoked: got %v; want %v", id, got, want)
		}
	}
	hookMu.Lock()
	if want := []string{parent, child}; !slices.Equal(hooked, want) {
		t.Errorf("revocation hook: got %v; want %v", hooked, want)
	}
	hookMu.Unlock()
	var got []string
	cascaded := e.entries("token.revoke")[before:]
	for _, en := range cascaded {
		got = append(got, en.Resource+" "+en.Meta["cascade_from"]+" "+en.Meta["cascade"]+" "+en.Meta["revoked"]+" "+en.Outcome+" "+en.TokenName)
		if en.RequestID == "" || en.RequestID != cascaded[len(cascaded)-1].RequestID {
			t.Errorf("entry %s: request id %q; want the request's", en.Resource, en.RequestID)
		}
	}
	want := []string{
		"token:" + child + " " + parent + "   allowed admin", // the descendant's, first
		"token:" + parent + "  true 2 allowed admin",         // the request's
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit entries:\ngot  %q\nwant %q", got, want)
	}

	// Again: nothing left; an empty list, not an absent one.
	b = e.mustDo(t, e.admin, "POST", "/v1/tokens/"+parent+"/revoke", map[string]any{"cascade": true}, 200)
	if !strings.Contains(string(b), `"revoked":[]`) {
		t.Errorf("run again: got %s; want an empty revoked list", b)
	}
}
