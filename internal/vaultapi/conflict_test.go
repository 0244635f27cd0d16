package vaultapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestConflictMessages checks that only a failed check-and-set is
// worded as one: other conflicts (destroying the current version) keep
// their own message.
func TestConflictMessages(t *testing.T) {
	e := mustServe(t)
	e.mustNative(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustNative(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": "conflict-value-1"}, 200)
	vault := map[string]string{"X-Vault-Token": e.admin, "Content-Type": "application/json"}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		wantCAS                  bool // the message names check-and-set
		want                     string
	}{
		{"stale cas", "POST", "/v1/payments/data/prod/KEY", `{"data":{"value":"x"},"options":{"cas":7}}`, 400, true, "at version 1, not 7"},
		{"cas 0 on an existing secret", "POST", "/v1/payments/data/prod/KEY", `{"data":{"value":"x"},"options":{"cas":0}}`, 400, true, "at version 1, not 0"},
		{"destroy the current version", "POST", "/v1/payments/destroy/prod/KEY", `{"versions":[1]}`, 400, false, "cannot be destroyed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := e.raw(t, tc.method, tc.path, strings.NewReader(tc.body), vault)
			var eb struct{ Errors []string }
			if err := json.Unmarshal(b, &eb); err != nil || status != tc.status || len(eb.Errors) != 1 {
				t.Fatalf("got %d %s; want %d with one error", status, b, tc.status)
			}
			msg := eb.Errors[0]
			if got := strings.Contains(msg, "check-and-set"); got != tc.wantCAS || !strings.Contains(msg, tc.want) {
				t.Fatalf("got error %q; want it to hold %q and to name check-and-set: %v", msg, tc.want, tc.wantCAS)
			}
		})
	}
}
