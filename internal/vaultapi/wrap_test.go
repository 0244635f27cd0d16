package vaultapi_test

import (
	"context"
	"strings"
	"testing"
)

// TestWrappingRefused: a client asking for a response-wrapped answer
// (X-Vault-Wrap-TTL: `vault kv get -wrap-ttl`, VAULT_WRAP_TTL) is refused
// with 400, not answered unwrapped: it expects a single-use wrapping token
// to hand on, and would otherwise print or pass on the secret itself. The
// refusal is audited and repeats no value.
func TestWrappingRefused(t *testing.T) {
	e := mustServe(t)
	ctx := context.Background()
	e.mustNative(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustNative(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": "wrapped-secret-value"}, 200)

	c := e.client(t, e.admin)
	c.SetWrappingLookupFunc(func(operation, path string) string {
		if strings.HasPrefix(path, "sys/internal/ui/mounts/") {
			return "" // the vault CLI's own preflight is never wrapped
		}
		return "60s"
	})
	s, err := c.KVv2("payments").Get(ctx, "prod/KEY")
	if err == nil {
		t.Fatalf("wrapped read: got %+v (data %v); want a refusal, not the value unwrapped", s, s.Data)
	}
	wantStatus(t, "wrapped read", err, 400)
	if strings.Contains(err.Error(), "wrapped-secret-value") {
		t.Fatalf("the refusal holds the value: %v", err)
	}

	// Every Vault route refuses it, the public login too (before the
	// identity token is spent).
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/payments/data/prod/KEY", `{"data":{"value":"x"}}`},
		{"GET", "/v1/payments/metadata/prod/KEY", ""},
		{"GET", "/v1/auth/token/lookup-self", ""},
		{"POST", "/v1/auth/jwt/login", `{"role":"deploy-prod","jwt":"a.b.c"}`},
	} {
		status, b := e.raw(t, tc.method, tc.path, strings.NewReader(tc.body), map[string]string{"X-Vault-Token": e.admin, "X-Vault-Wrap-TTL": "5m"})
		if status != 400 || !strings.Contains(string(b), "wrapping") {
			t.Errorf("%s %s with X-Vault-Wrap-TTL: got %d %s; want 400 refusing wrapping", tc.method, tc.path, status, b)
		}
	}
	if got := e.nativeValue(t, "payments/prod/KEY"); got != "wrapped-secret-value" {
		t.Errorf("the refused wrapped write changed the secret: got %q", got)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var refused int
	for _, a := range e.audit {
		if a.Meta["api"] == "vault" && a.Status == 400 && strings.Contains(a.Reason, "wrapping") {
			refused++
		}
	}
	if refused < 5 {
		t.Errorf("got %d audited wrapping refusals; want 5", refused)
	}
}
