package vaultapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bao "github.com/openbao/openbao/api/v2"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// vaultEnv is a real tokenward server on loopback (SQLite, OIDC, an audit
// hook keeping every entry) and the admin token.
type vaultEnv struct {
	srv    *httptest.Server
	api    *httpapi.Server
	core   *core.Core
	issuer *oidctest.Issuer
	admin  string
	now    time.Time
	dbPath string
	logs   lockedBuffer // every log line of the server, at debug level

	mu    sync.Mutex
	audit []*tokenward.AuditEntry
}

func mustServe(t *testing.T) *vaultEnv {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "tokenward.db")
	db := sqlite.NewDB(dbPath)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &vaultEnv{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), dbPath: dbPath}
	logger := slog.New(slog.NewJSONHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	key := seal.NewKey()
	var err error
	if e.admin, err = core.Init(context.Background(), db, key, e.now); err != nil {
		t.Fatal(err)
	}
	if e.core, err = core.New(context.Background(), db, key); err != nil {
		t.Fatal(err)
	}
	e.core.Now = func() time.Time { return e.now }
	e.core.Logger = logger
	e.core.OIDC = &core.OIDC{Store: db, Verifier: oidc.NewVerifier(), MaxTTL: time.Hour}
	e.issuer = oidctest.NewIssuer(t)
	e.api = httpapi.NewServer(e.core, logger)
	e.api.Audit = func(_ context.Context, a *tokenward.AuditEntry) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.audit = append(e.audit, a)
		return nil
	}
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	return e
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wantNowhere checks that no secret is in the server's logs, its audit
// trail or its database files (values are sealed, tokens hashed).
func (e *vaultEnv) wantNowhere(t *testing.T, secrets ...string) {
	t.Helper()
	e.mu.Lock()
	trail, _ := json.Marshal(e.audit)
	e.mu.Unlock()
	places := map[string]string{"the log": e.logs.String(), "the audit trail": string(trail)}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		places["the database file "+filepath.Base(e.dbPath+suffix)] = string(b)
	}
	if !strings.Contains(places["the log"], `"level":"DEBUG"`) {
		t.Fatal("no debug line was logged: the log check would see nothing")
	}
	for where, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %.12q...", where, s)
			}
		}
	}
}

// client is a Vault client of the server with token.
func (e *vaultEnv) client(t *testing.T, token string) *bao.Client {
	t.Helper()
	cfg := bao.DefaultConfig()
	cfg.Address = e.srv.URL
	cfg.MaxRetries = 0
	c, err := bao.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// native calls tokenward's own API and returns status and body.
func (e *vaultEnv) native(t *testing.T, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	return e.raw(t, method, path, r, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
}

func (e *vaultEnv) raw(t *testing.T, method, path string, body io.Reader, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *vaultEnv) mustNative(t *testing.T, token, method, path string, body any, want int) []byte {
	t.Helper()
	got, b := e.native(t, token, method, path, body)
	if got != want {
		t.Fatalf("%s %s: got %d %s; want %d", method, path, got, b, want)
	}
	return b
}

// nativeValue reads a secret through tokenward's own API.
func (e *vaultEnv) nativeValue(t *testing.T, path string) string {
	t.Helper()
	var resp struct{ Value string }
	if err := json.Unmarshal(e.mustNative(t, e.admin, "GET", "/v1/secrets/"+path, nil, 200), &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Value
}

// wantStatus checks err is Vault's error with status and a non-empty
// errors array.
func wantStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	var re *bao.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || len(re.Errors) == 0 || re.Errors[0] == "" {
		t.Fatalf("%s: got %v; want Vault error %d with an errors array", what, err, status)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestVaultClientKV drives KV v2 through the OpenBao/Vault Go client against
// a real server: writes and reads both ways between the Vault and the
// native API, versions, check-and-set, metadata, lists, delete, undelete,
// destroy; one audit entry per request, none holding a value or a token.
func TestVaultClientKV(t *testing.T) {
	e := mustServe(t)
	ctx := context.Background()
	e.mustNative(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	e.mustNative(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "audit", "environments": []string{"prod"}}, 201)
	e.mustNative(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "sys", "environments": []string{"prod"}}, 201)
	kv := e.client(t, e.admin).KVv2("payments")

	// Vault → tokenward: one "value" key is the plain value; several keys
	// are one JSON object.
	s, err := kv.Put(ctx, "prod/STRIPE_KEY", map[string]any{"value": "sk_live_one"})
	must(t, err)
	if s.VersionMetadata.Version != 1 {
		t.Fatalf("first write: got version %d; want 1", s.VersionMetadata.Version)
	}
	if got := e.nativeValue(t, "payments/prod/STRIPE_KEY"); got != "sk_live_one" {
		t.Errorf("native read of a single-value KV secret: got %q; want sk_live_one", got)
	}
	_, err = kv.Put(ctx, "prod/DB", map[string]any{"user": "app", "password": "pw-one", "port": 5432})
	must(t, err)
	if got := e.nativeValue(t, "payments/prod/DB"); got != `{"password":"pw-one","port":5432,"user":"app"}` {
		t.Errorf("native read of a multi-key KV secret: got %q; want the JSON object", got)
	}
	// tokenward → Vault.
	e.mustNative(t, e.admin, "PUT", "/v1/secrets/payments/prod/PLAIN", map[string]any{"value": "hunter2-plain"}, 200)
	e.mustNative(t, e.admin, "PUT", "/v1/secrets/payments/prod/OBJ", map[string]any{"value": `{"a":"b"}`}, 200)
	for name, want := range map[string]map[string]any{
		"PLAIN":      {"value": "hunter2-plain"},
		"OBJ":        {"a": "b"},
		"STRIPE_KEY": {"value": "sk_live_one"},
		"DB":         {"user": "app", "password": "pw-one", "port": json.Number("5432")},
	} {
		s, err := kv.Get(ctx, "prod/"+name)
		must(t, err)
		if !equalData(s.Data, want) {
			t.Errorf("KV read of %s: got %v; want %v", name, s.Data, want)
		}
	}

	// Versions and check-and-set.
	_, err = kv.Put(ctx, "prod/STRIPE_KEY", map[string]any{"value": "sk_live_two"}, bao.WithCheckAndSet(7))
	wantStatus(t, "write with a stale cas", err, 400)
	s, err = kv.Put(ctx, "prod/STRIPE_KEY", map[string]any{"value": "sk_live_two"}, bao.WithCheckAndSet(1))
	must(t, err)
	if s.VersionMetadata.Version != 2 {
		t.Fatalf("second write: got version %d; want 2", s.VersionMetadata.Version)
	}
	_, err = kv.Put(ctx, "prod/NEW_ONLY", map[string]any{"value": "x-new"}, bao.WithCheckAndSet(0))
	must(t, err)
	_, err = kv.Put(ctx, "prod/NEW_ONLY", map[string]any{"value": "x-new2"}, bao.WithCheckAndSet(0))
	wantStatus(t, "cas 0 on an existing secret", err, 400)
	s, err = kv.GetVersion(ctx, "prod/STRIPE_KEY", 1)
	must(t, err)
	if s.Data["value"] != "sk_live_one" || s.VersionMetadata.Version != 1 {
		t.Errorf("version 1: got %v v%d; want sk_live_one v1", s.Data, s.VersionMetadata.Version)
	}
	_, err = kv.Get(ctx, "prod/MISSING")
	if !errors.Is(err, bao.ErrSecretNotFound) {
		t.Errorf("missing secret: got %v; want ErrSecretNotFound", err)
	}

	// Lists: the mount's environments, an environment's secrets.
	l, err := kv.List(ctx, "")
	must(t, err)
	if !slices.Equal(l.Keys, []string{"prod/", "dev/"}) && !slices.Equal(l.Keys, []string{"dev/", "prod/"}) {
		t.Errorf("list of the mount: got %v; want prod/ and dev/", l.Keys)
	}
	l, err = kv.List(ctx, "prod")
	must(t, err)
	if want := []string{"DB", "NEW_ONLY", "OBJ", "PLAIN", "STRIPE_KEY"}; !slices.Equal(l.Keys, want) {
		t.Errorf("list of prod: got %v; want %v", l.Keys, want)
	}

	// Soft delete of the latest version, undelete, destroy.
	must(t, kv.Delete(ctx, "prod/STRIPE_KEY"))
	s, err = kv.Get(ctx, "prod/STRIPE_KEY")
	if err != nil || s.Data != nil || s.VersionMetadata == nil || s.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("read of a deleted version: got %+v, %v; want no data and a deletion time", s, err)
	}
	must(t, kv.Undelete(ctx, "prod/STRIPE_KEY", []int{2}))
	s, err = kv.Get(ctx, "prod/STRIPE_KEY")
	if err != nil || s.Data["value"] != "sk_live_two" {
		t.Fatalf("read after undelete: got %+v, %v; want sk_live_two", s, err)
	}
	must(t, kv.DeleteVersions(ctx, "prod/STRIPE_KEY", []int{1}))
	must(t, kv.Destroy(ctx, "prod/STRIPE_KEY", []int{1}))
	wantStatus(t, "destroy of the current version", kv.Destroy(ctx, "prod/STRIPE_KEY", []int{2}), 400)
	s, err = kv.GetVersion(ctx, "prod/STRIPE_KEY", 1)
	if err != nil || s.Data != nil || !s.VersionMetadata.Destroyed {
		t.Fatalf("read of a destroyed version: got %+v, %v; want no data, destroyed", s, err)
	}
	if got, b := e.native(t, e.admin, "GET", "/v1/secrets/payments/prod/STRIPE_KEY?version=1", nil); got != 404 || !strings.Contains(string(b), "destroyed") {
		t.Errorf("native read of a destroyed version: got %d %s; want 404 destroyed", got, b)
	}
	m, err := kv.GetMetadata(ctx, "prod/STRIPE_KEY")
	must(t, err)
	if m.CurrentVersion != 2 || m.OldestVersion != 1 || len(m.Versions) != 2 || !m.Versions["1"].Destroyed || m.Versions["2"].Destroyed || !m.Versions["2"].DeletionTime.IsZero() {
		t.Errorf("metadata: got %+v; want current 2, oldest 1, version 1 destroyed, 2 live", m)
	}

	// A project named like one of tokenward's own paths is not a mount.
	mounts, err := e.client(t, e.admin).Sys().ListMounts()
	must(t, err)
	if p := mounts["payments/"]; p == nil || p.Type != "kv" || p.Options["version"] != "2" || mounts["audit/"] != nil || mounts["sys/"] != nil {
		t.Errorf("mounts: got %v; want payments/ as kv v2, and neither audit/ nor sys/", mounts)
	}

	// One audit entry per Vault request, as the native API's; never a
	// value or the token, there, in the log or in the database.
	e.wantNowhere(t, "sk_live_one", "sk_live_two", "pw-one", "hunter2-plain", e.admin)
	e.mu.Lock()
	defer e.mu.Unlock()
	var vault int
	for _, a := range e.audit {
		if a.Meta["api"] == "vault" {
			vault++
		}
	}
	if vault < 20 {
		t.Errorf("got %d audit entries of Vault requests; want one per request (20 or more)", vault)
	}
}

func equalData(got map[string]any, want map[string]any) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}

// TestVaultClientJWTLogin logs in through auth/jwt/login with a CI identity
// token (role = binding), reads what the binding grants, is refused (403,
// Vault's errors array) what it does not, and looks up, renews and revokes
// itself.
func TestVaultClientJWTLogin(t *testing.T) {
	e := mustServe(t)
	ctx := context.Background()
	e.mustNative(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, 201)
	e.mustNative(t, e.admin, "PUT", "/v1/secrets/payments/prod/DEPLOY_KEY", map[string]any{"value": "deploy-value-1"}, 200)
	e.mustNative(t, e.admin, "PUT", "/v1/secrets/payments/dev/DEPLOY_KEY", map[string]any{"value": "dev-value-1"}, 200)
	e.mustNative(t, e.admin, "POST", "/v1/bindings", map[string]any{
		"name": "deploy-prod", "issuer": e.issuer.URL, "audiences": []string{"tokenward"},
		"claims": []map[string]any{{"claim": "repository", "values": []string{"acme/payments"}}},
		"grants": []string{"read:payments/prod/*"}, "ttl": "15m",
	}, 201)

	c := e.client(t, "")
	jwt := e.issuer.Sign(t, oidctest.GitHubClaims(e.issuer.URL, "tokenward", e.now))
	_, err := c.Logical().Write("auth/jwt/login", map[string]any{"role": "nope", "jwt": jwt})
	wantStatus(t, "login with an unknown role", err, 403)
	jwt = e.issuer.Sign(t, oidctest.GitHubClaims(e.issuer.URL, "tokenward", e.now.Add(time.Second)))
	s, err := c.Logical().Write("auth/jwt/login", map[string]any{"role": "deploy-prod", "jwt": jwt})
	must(t, err)
	if s.Auth == nil || !strings.HasPrefix(s.Auth.ClientToken, tokenward.PrefixJIT) || s.Auth.LeaseDuration != 900 || !slices.Equal(s.Auth.Policies, []string{"read:payments/prod/*"}) {
		t.Fatalf("login: got %+v; want a twj_ token for 900 s with read:payments/prod/*", s.Auth)
	}
	jit := s.Auth.ClientToken
	c.SetToken(jit)

	kv := c.KVv2("payments")
	got, err := kv.Get(ctx, "prod/DEPLOY_KEY")
	if err != nil || got.Data["value"] != "deploy-value-1" {
		t.Fatalf("read as the JIT token: got %v, %v", got, err)
	}
	_, err = kv.Get(ctx, "dev/DEPLOY_KEY")
	wantStatus(t, "read outside the binding", err, 403)
	_, err = kv.Put(ctx, "prod/DEPLOY_KEY", map[string]any{"value": "x"})
	wantStatus(t, "write with read only", err, 403)
	wantStatus(t, "delete with read only", kv.Delete(ctx, "prod/DEPLOY_KEY"), 403)

	self, err := c.Auth().Token().LookupSelf()
	must(t, err)
	if acc, _ := self.Data["accessor"].(string); !strings.HasPrefix(acc, tokenward.TokenIDPrefix) || self.Data["path"] != "auth/jwt/login" {
		t.Errorf("lookup-self: got %v; want the token id as accessor, path auth/jwt/login", self.Data)
	}
	e.now = e.now.Add(5 * time.Minute)
	r, err := c.Auth().Token().RenewSelf(3600)
	must(t, err)
	if r.Auth.LeaseDuration != 600 || r.Auth.ClientToken != jit || len(r.Warnings) == 0 {
		t.Errorf("renew-self: got lease %d, warnings %v; want 600 s left (never extended) and a warning", r.Auth.LeaseDuration, r.Warnings)
	}
	must(t, c.Auth().Token().RevokeSelf(""))
	_, err = kv.Get(ctx, "prod/DEPLOY_KEY")
	wantStatus(t, "read after revoke-self", err, 403)

	h, err := c.Sys().Health()
	if err != nil || !h.Initialized || h.Sealed {
		t.Errorf("health: got %+v, %v; want initialized, unsealed", h, err)
	}

	e.wantNowhere(t, jwt, jit, "deploy-value-1", "dev-value-1", e.admin)
	e.mu.Lock()
	defer e.mu.Unlock()
	var logins, denied int
	for _, a := range e.audit {
		if a.Action == "auth.oidc_login" {
			logins++
		}
		if a.Outcome == tokenward.OutcomeDenied && a.Status == 403 {
			denied++
		}
	}
	if logins != 2 || denied < 5 {
		t.Errorf("audit: got %d logins, %d denials with 403; want 2 and at least 5", logins, denied)
	}
}

// TestVaultEnvelope checks the wire format with plain HTTP: Vault's
// envelope with the request id of the audit entry, a denial as 403 with
// an errors array, and tokenward's own routes unchanged beside it.
func TestVaultEnvelope(t *testing.T) {
	e := mustServe(t)
	e.mustNative(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustNative(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": "envelope-value"}, 200)
	vault := map[string]string{"X-Vault-Token": e.admin}

	status, b := e.raw(t, "GET", "/v1/payments/data/prod/KEY", nil, vault)
	var env struct {
		RequestID     string `json:"request_id"`
		LeaseDuration *int   `json:"lease_duration"`
		Data          struct {
			Data     map[string]string `json:"data"`
			Metadata map[string]any    `json:"metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &env); status != 200 || err != nil || env.RequestID == "" || env.LeaseDuration == nil || env.Data.Data["value"] != "envelope-value" || env.Data.Metadata["version"] != 1.0 {
		t.Fatalf("KV read: got %d %s; want Vault's envelope", status, b)
	}
	e.mu.Lock()
	last := e.audit[len(e.audit)-1]
	e.mu.Unlock()
	if last.RequestID != env.RequestID || last.Action != "secret.read" || last.Resource != "payments/prod/KEY" || last.Status != 200 {
		t.Errorf("audit entry: got %+v; want secret.read of payments/prod/KEY with request id %s", last, env.RequestID)
	}

	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		status             int
	}{
		{"no token", "GET", "/v1/payments/data/prod/KEY", nil, 403},
		{"bad token", "GET", "/v1/payments/data/prod/KEY", map[string]string{"X-Vault-Token": "tws_nope"}, 403},
		{"bearer is accepted", "GET", "/v1/payments/data/prod/KEY", map[string]string{"Authorization": "Bearer " + e.admin}, 200},
		{"not a tokenward path", "GET", "/v1/payments/data/prod/a/b", vault, 400},
		{"a dot segment", "GET", "/v1/payments/data/prod/%2e%2e", vault, 400},
		{"unsupported method", "PATCH", "/v1/payments/data/prod/KEY", vault, 405},
		{"unknown sys path", "GET", "/v1/sys/policies/acl", vault, 404},
		{"no such mount", "GET", "/v1/nothing/data/prod/KEY", vault, 404},
	} {
		status, b := e.raw(t, tc.method, tc.path, nil, tc.header)
		var eb struct{ Errors []string }
		if status != tc.status || (status >= 400 && (json.Unmarshal(b, &eb) != nil || len(eb.Errors) == 0)) {
			t.Errorf("%s: got %d %s; want %d with Vault's errors array", tc.name, status, b, tc.status)
		}
	}

	// tokenward's own routes answer as before, next to Vault's.
	if status, b := e.native(t, e.admin, "GET", "/v1/secrets/payments/prod/KEY", nil); status != 200 || !strings.Contains(string(b), `"value":"envelope-value"`) {
		t.Errorf("native read: got %d %s", status, b)
	}
	if status, b := e.native(t, "", "GET", "/v1/secrets/payments/prod/KEY", nil); status != 401 || !strings.Contains(string(b), `"code":"unauthorized"`) {
		t.Errorf("native read without a token: got %d %s; want 401 in tokenward's error body", status, b)
	}
	if status, _ := e.raw(t, "GET", "/v1/sys/health", nil, nil); status != 200 {
		t.Errorf("sys/health: got %d; want 200 without a token", status)
	}
}
