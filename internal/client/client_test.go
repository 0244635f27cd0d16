package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// mustClient returns a client of a test server that counts the requests
// it gets and answers each with answer (or 200 {} when nil).
func mustClient(tb testing.TB, answer http.HandlerFunc) (*Client, *atomic.Int64, *atomic.Value) {
	tb.Helper()
	var n atomic.Int64
	var last atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		last.Store(r.Method + " " + r.URL.EscapedPath())
		if answer != nil {
			answer(w, r)
			return
		}
		w.Write([]byte("{}"))
	}))
	tb.Cleanup(srv.Close)
	c, err := New(srv.URL, "tws_test")
	if err != nil {
		tb.Fatal(err)
	}
	return c, &n, &last
}

// TestBadNamesNeverSent: a name that is not valid fails with
// api.CheckName's error (the server's for the same path) and no request
// leaves the client.
func TestBadNamesNeverSent(t *testing.T) {
	c, sent, _ := mustClient(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		call  func() error
		kind  api.Kind
		value string
	}{
		{"secret get payments/../x", func() error { _, err := c.GetSecret(ctx, "payments", "..", "x", 0); return err }, api.KindEnv, ".."},
		{"secret get ./prod/X", func() error { _, err := c.GetSecret(ctx, ".", "prod", "X", 0); return err }, api.KindProject, "."},
		{"secret get empty env", func() error { _, err := c.GetSecret(ctx, "payments", "", "X", 0); return err }, api.KindEnv, ""},
		{"secret get %2e%2e", func() error { _, err := c.GetSecret(ctx, "payments", "%2e%2e", "X", 0); return err }, api.KindEnv, "%2e%2e"},
		{"secret get slash in name", func() error { _, err := c.GetSecret(ctx, "payments", "prod", "A/B", 0); return err }, api.KindSecret, "A/B"},
		{"secret label", func() error {
			_, err := c.GetSecretLabel(ctx, "payments", "prod", "..", "previous")
			return err
		}, api.KindSecret, ".."},
		{"secret set", func() error {
			_, err := c.SetSecret(ctx, "payments", "prod/x", "X", api.PutSecretRequest{})
			return err
		}, api.KindEnv, "prod/x"},
		{"secret history", func() error { _, err := c.SecretHistory(ctx, "..", "prod", "X"); return err }, api.KindProject, ".."},
		{"secret rollback", func() error { _, err := c.RollbackSecret(ctx, "payments", "prod", "", 1); return err }, api.KindSecret, ""},
		{"secret list", func() error { _, err := c.Secrets(ctx, "payments", ".."); return err }, api.KindEnv, ".."},
		{"env values", func() error { _, err := c.EnvValues(ctx, "Payments", "prod"); return err }, api.KindProject, "Payments"},
		{"project", func() error { _, err := c.Project(ctx, ".."); return err }, api.KindProject, ".."},
		{"env create", func() error { _, err := c.CreateEnv(ctx, "a%2Fb", "prod"); return err }, api.KindProject, "a%2Fb"},
		{"duplicates", func() error { _, err := c.Duplicates(ctx, ""); return err }, api.KindProject, ""},
		{"token get", func() error { _, err := c.GetToken(ctx, ".."); return err }, api.KindToken, ".."},
		{"token revoke", func() error { _, err := c.RevokeToken(ctx, "a/b"); return err }, api.KindToken, "a/b"},
		{"token revoke cascade", func() error { _, err := c.RevokeTokenCascade(ctx, ".."); return err }, api.KindToken, ".."},
		{"binding get", func() error { _, err := c.GetBinding(ctx, "."); return err }, api.KindBinding, "."},
		{"binding delete", func() error { _, err := c.DeleteBinding(ctx, ""); return err }, api.KindBinding, ""},
		{"binding enable", func() error { _, err := c.SetBindingEnabled(ctx, "..", true); return err }, api.KindBinding, ".."},
		{"anomaly ack", func() error { _, err := c.AckAnomaly(ctx, "../x"); return err }, api.KindAnomaly, "../x"},
		{"usage", func() error { _, err := c.SecretUsage(ctx, "payments", "."); return err }, api.KindEnv, "."},
		{"retire env", func() error { _, err := c.Retire(ctx, "payments", "..", "", true); return err }, api.KindEnv, ".."},
		{"restore env", func() error { _, err := c.RestoreEnv(ctx, "..", "prod"); return err }, api.KindProject, ".."},
		{"rotation policy", func() error { _, err := c.RotationPolicy(ctx, "payments/../X"); return err }, api.KindEnv, ".."},
		{"rotate now", func() error { _, err := c.RotateNow(ctx, "payments/prod/."); return err }, api.KindSecret, "."},
		{"rotation set", func() error {
			_, err := c.SetRotationPolicy(ctx, &api.RotationPolicy{Secret: "./prod/X", RotationSettings: api.RotationSettings{Rotator: "random"}})
			return err
		}, api.KindProject, "."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := sent.Load()
			err := tc.call()
			want := api.CheckName(tc.kind, tc.value)
			if want == nil {
				t.Fatalf("api.CheckName(%q, %q) = nil; the case is not a bad name", tc.kind, tc.value)
			}
			if tokenward.ErrorCode(err) != tokenward.EINVALID || tokenward.ErrorMessage(err) != tokenward.ErrorMessage(want) {
				t.Errorf("got %v; want %v", err, want)
			}
			if got := sent.Load() - before; got != 0 {
				t.Errorf("got %d requests sent; want none", got)
			}
		})
	}
}

// TestPathsEscaped: valid names reach the route they name, each as one
// escaped segment.
func TestPathsEscaped(t *testing.T) {
	c, _, last := mustClient(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		call func() error
		want string
	}{
		{func() error { _, err := c.GetSecret(ctx, "payments", "prod", "API_KEY", 3); return err }, "GET /v1/secrets/payments/prod/API_KEY"},
		{func() error { _, err := c.RotationHistory(ctx, "payments/prod/API_KEY"); return err }, "GET /v1/rotation/history/payments/prod/API_KEY"},
		{func() error { _, err := c.RevokeToken(ctx, "ci@deploy:1"); return err }, "POST /v1/tokens/ci@deploy:1/revoke"},
		{func() error { _, err := c.RevokeTokenCascade(ctx, "ci@deploy:1"); return err }, "POST /v1/tokens/ci@deploy:1/revoke"},
		{func() error { _, err := c.GetToken(ctx, "a b"); return err }, "GET /v1/tokens/a%20b"},
		{func() error { _, err := c.Retire(ctx, "payments", "dev", "", true); return err }, "POST /v1/projects/payments/envs/dev/retire"},
	} {
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		if got := last.Load(); got != tc.want {
			t.Errorf("got %v; want %s", got, tc.want)
		}
	}
}

// TestServerError: an error answer becomes the server's domain error; one
// without an error body a generic one naming the status.
func TestServerError(t *testing.T) {
	c, _, _ := mustClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/projects" {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":{"code":"conflict","message":"project payments exists"}}`))
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	})
	ctx := context.Background()
	_, err := c.CreateProject(ctx, "payments", nil)
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT || tokenward.ErrorMessage(err) != "project payments exists" {
		t.Errorf("got %v; want the server's conflict", err)
	}
	err = c.Health(ctx)
	if tokenward.ErrorCode(err) != tokenward.EINTERNAL || tokenward.ErrorMessage(err) != "server answered 502 Bad Gateway" {
		t.Errorf("got %v; want server answered 502 Bad Gateway", err)
	}
	if err := c.ExportAudit(ctx, io.Discard); tokenward.ErrorCode(err) != tokenward.EINTERNAL {
		t.Errorf("export: got %v; want the 502 as an error", err)
	}
}
