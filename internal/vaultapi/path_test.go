package vaultapi

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

// native stands for tokenward's own first segments in these tests.
func native(s string) bool { return s == "secrets" || s == "tokens" || s == "auth" || s == "audit" }

func TestParse(t *testing.T) {
	tests := []struct {
		method, path, query string
		vault               bool
		op                  Op
		mount, env, name    string
		code                string // of Err
	}{
		// tokenward's own API is never Vault's.
		{"GET", "/v1/secrets/payments/prod/KEY", "", false, "", "", "", "", ""},
		{"GET", "/v1/secrets/data/prod/KEY", "", false, "", "", "", "", ""},
		{"POST", "/v1/auth/oidc/login", "", false, "", "", "", "", ""},
		{"GET", "/v1/audit/metadata/x", "", false, "", "", "", "", ""},
		{"GET", "/v1/payments", "", false, "", "", "", "", ""},
		{"GET", "/healthz", "", false, "", "", "", "", ""},
		// ... also percent-encoded, or listed: tokenward's names are no mounts.
		{"GET", "/v1/%73ecrets/data/prod/KEY", "", false, "", "", "", "", ""},
		{"LIST", "/v1/tokens/metadata/", "", true, "", "", "", "", tokenward.ENOTFOUND},
		{"LIST", "/v1/%74okens/metadata/", "", true, "", "", "", "", tokenward.ENOTFOUND},
		// KV v2.
		{"GET", "/v1/payments/data/prod/STRIPE_KEY", "", true, OpKVRead, "payments", "prod", "STRIPE_KEY", ""},
		{"HEAD", "/v1/payments/data/prod/STRIPE_KEY", "", true, OpKVRead, "payments", "prod", "STRIPE_KEY", ""},
		{"POST", "/v1/payments/data/prod/STRIPE_KEY", "", true, OpKVWrite, "payments", "prod", "STRIPE_KEY", ""},
		{"PUT", "/v1/payments/data/prod/STRIPE_KEY", "", true, OpKVWrite, "payments", "prod", "STRIPE_KEY", ""},
		{"DELETE", "/v1/payments/data/prod/STRIPE_KEY", "", true, OpKVDelete, "payments", "prod", "STRIPE_KEY", ""},
		{"POST", "/v1/payments/delete/prod/STRIPE_KEY", "", true, OpKVDeleteVers, "payments", "prod", "STRIPE_KEY", ""},
		{"PUT", "/v1/payments/delete/prod/STRIPE_KEY", "", true, OpKVDeleteVers, "payments", "prod", "STRIPE_KEY", ""},
		{"POST", "/v1/payments/undelete/prod/STRIPE_KEY", "", true, OpKVUndelete, "payments", "prod", "STRIPE_KEY", ""},
		{"POST", "/v1/payments/destroy/prod/STRIPE_KEY", "", true, OpKVDestroy, "payments", "prod", "STRIPE_KEY", ""},
		{"GET", "/v1/payments/metadata/prod/STRIPE_KEY", "", true, OpKVMetadata, "payments", "prod", "STRIPE_KEY", ""},
		{"LIST", "/v1/payments/metadata/", "", true, OpKVList, "payments", "", "", ""},
		{"LIST", "/v1/payments/metadata", "", true, OpKVList, "payments", "", "", ""},
		{"LIST", "/v1/payments/metadata/prod/", "", true, OpKVList, "payments", "prod", "", ""},
		{"GET", "/v1/payments/metadata/prod", "list=true", true, OpKVList, "payments", "prod", "", ""},
		{"GET", "/v1/payments/metadata/prod", "list=True", true, OpKVList, "payments", "prod", "", ""},
		{"GET", "/v1/payments/metadata/prod", "list=t", true, OpKVList, "payments", "prod", "", ""},
		{"GET", "/v1/payments/metadata/prod", "list=1", true, OpKVList, "payments", "prod", "", ""},
		{"GET", "/v1/payments/metadata/prod/KEY", "list=false", true, OpKVMetadata, "payments", "prod", "KEY", ""},
		{"GET", "/v1/payments/metadata/prod/KEY", "list=yes", true, OpKVMetadata, "payments", "prod", "KEY", ""},
		{"LIST", "/v1/payments/metadata/prod/KEY/", "", true, OpKVList, "payments", "", "", tokenward.ENOTFOUND},
		{"LIST", "/v1/payments/data/prod/", "", true, "", "", "", "", tokenward.ENOTALLOWED},
		{"LIST", "/v1/secrets/payments/prod", "", true, "", "", "", "", tokenward.ENOTFOUND},
		{"PATCH", "/v1/payments/data/prod/KEY", "", true, "", "", "", "", tokenward.ENOTALLOWED},
		{"DELETE", "/v1/payments/metadata/prod/KEY", "", true, "", "", "", "", tokenward.ENOTALLOWED},
		{"GET", "/v1/payments/delete/prod/KEY", "", true, "", "", "", "", tokenward.ENOTALLOWED},
		// Paths tokenward cannot hold, and what a path cleaner would change.
		{"GET", "/v1/payments/data/prod", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/payments/data/prod/a/KEY", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/payments/data/prod/not-a-var", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/Payments/data/prod/KEY", "", true, OpKVRead, "Payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/payments/data/prod/../KEY", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/payments/data/prod/%2e%2e", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/payments/data/prod%2fKEY", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/payments/data//KEY", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/payments/data/prod/KEY/", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		{"GET", "/v1/payments/data/prod/%zz", "", true, OpKVRead, "payments", "", "", tokenward.EINVALID},
		// Auth and sys.
		{"POST", "/v1/auth/jwt/login", "", true, OpJWTLogin, "", "", "", ""},
		{"PUT", "/v1/auth/jwt/login", "", true, OpJWTLogin, "", "", "", ""},
		{"GET", "/v1/auth/jwt/login", "", true, "", "", "", "", tokenward.ENOTALLOWED},
		{"POST", "/v1/auth/jwt/role/x", "", true, "", "", "", "", tokenward.ENOTFOUND},
		{"GET", "/v1/auth/token/lookup-self", "", true, OpLookupSelf, "", "", "", ""},
		{"POST", "/v1/auth/token/renew-self", "", true, OpRenewSelf, "", "", "", ""},
		{"POST", "/v1/auth/token/revoke-self", "", true, OpRevokeSelf, "", "", "", ""},
		{"POST", "/v1/auth/token/create", "", true, "", "", "", "", tokenward.ENOTFOUND},
		{"GET", "/v1/sys/health", "", true, OpHealth, "", "", "", ""},
		{"GET", "/v1/sys/mounts", "", true, OpMounts, "", "", "", ""},
		{"GET", "/v1/sys/internal/ui/mounts/payments/prod/KEY", "", true, OpUIMount, "payments", "", "", ""},
		{"GET", "/v1/sys/policy", "", true, "", "", "", "", tokenward.ENOTFOUND},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, vault := Parse(tc.method, tc.path, tc.query, native)
			if vault != tc.vault {
				t.Fatalf("vault: got %v; want %v", vault, tc.vault)
			}
			var op Op
			if req.Route != nil {
				op = req.Route.Op
			}
			if op != tc.op || tokenward.ErrorCode(req.Err) != tc.code {
				t.Fatalf("got op %q err %v; want op %q code %q", op, req.Err, tc.op, tc.code)
			}
			if tc.code == "" && (req.Mount != tc.mount || req.Env != tc.env || req.Name != tc.name) {
				t.Errorf("got %q/%q/%q; want %q/%q/%q", req.Mount, req.Env, req.Name, tc.mount, tc.env, tc.name)
			}
		})
	}
}

// TestRoutesParse: every route's pattern, filled in, parses back to it.
func TestRoutesParse(t *testing.T) {
	for i := range Routes {
		rt := &Routes[i]
		path := strings.NewReplacer("{mount}", "payments", "{path...}", "prod/KEY").Replace(rt.Pattern)
		if rt.Op == OpKVList {
			path = strings.TrimSuffix(path, "/KEY")
		}
		req, ok := Parse(rt.Method, path, "", native)
		if !ok || req.Route != rt || req.Err != nil {
			t.Errorf("%s %s: got route %v err %v; want %s %s", rt.Method, path, req.Route, req.Err, rt.Method, rt.Pattern)
		}
	}
}

// FuzzParse: Parse never panics; what it accepts is a valid project,
// environment and secret name, and the same path escaped again parses
// the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/v1/payments/data/prod/KEY", "/v1/p/metadata/", "/v1/p/metadata/prod/", "/v1/sys/internal/ui/mounts/p", "/v1/auth/jwt/login", "/v1/p/data/%2e/K", "/v1/p/destroy/prod/K"} {
		for _, m := range []string{"GET", "LIST", "POST", "DELETE"} {
			f.Add(m, s, "")
		}
	}
	f.Add("GET", "/v1/p/metadata/prod", "list=true")
	f.Fuzz(func(t *testing.T, method, path, query string) {
		req, ok := Parse(method, path, query, native)
		if !ok || req.Route == nil || req.Err != nil {
			return
		}
		if req.Mount != "" && tokenward.ValidateProjectName(req.Mount) != nil {
			t.Fatalf("%s %s: accepted mount %q", method, path, req.Mount)
		}
		if req.Env != "" && tokenward.ValidateEnvName(req.Env) != nil {
			t.Fatalf("%s %s: accepted env %q", method, path, req.Env)
		}
		if req.Name != "" && tokenward.ValidateSecretName(req.Name) != nil {
			t.Fatalf("%s %s: accepted name %q", method, path, req.Name)
		}
		if req.Route.Op == OpKVList || req.Mount == "" || req.Route.Op == OpUIMount {
			return
		}
		again := "/v1/" + url.PathEscape(req.Mount) + "/" + strings.Split(path, "/")[3] + "/" + url.PathEscape(req.Env) + "/" + url.PathEscape(req.Name)
		req2, ok := Parse(method, again, query, native)
		if !ok || req2 != req {
			t.Fatalf("%s %s parsed as %+v; re-escaped %s as %+v", method, path, req, again, req2)
		}
	})
}
