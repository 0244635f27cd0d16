package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/oidc"
)

// FuzzNamesInPaths puts any name in each kind of path segment and checks
// that client and server agree with api.CheckName: a name it refuses gets
// its error from the client before sending, and from the server (400,
// same message) when sent anyway, escaped as one segment; a name it
// accepts reaches the route that names it — never a redirect, another
// route, no route, or a server error.
func FuzzNamesInPaths(f *testing.F) {
	e := mustServeMonitor(f)
	e.core.OIDC = &core.OIDC{Store: e.core.Store.(core.BindingStore), Verifier: oidc.NewVerifier(), MaxTTL: time.Hour}
	e.mustDo(f, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	c, err := client.New(e.srv.URL, e.admin)
	if err != nil {
		f.Fatal(err)
	}
	type target struct {
		kind api.Kind
		path func(string) string
		call func(context.Context, string) error
	}
	targets := []target{
		{api.KindProject, func(s string) string { return "/v1/projects/" + s }, func(ctx context.Context, s string) error { _, err := c.Project(ctx, s); return err }},
		{api.KindEnv, func(s string) string { return "/v1/secrets/payments/" + s }, func(ctx context.Context, s string) error { _, err := c.Secrets(ctx, "payments", s); return err }},
		{api.KindSecret, func(s string) string { return "/v1/secrets/payments/prod/" + s }, func(ctx context.Context, s string) error {
			_, err := c.GetSecret(ctx, "payments", "prod", s, 0)
			return err
		}},
		{api.KindToken, func(s string) string { return "/v1/tokens/" + s }, func(ctx context.Context, s string) error { _, err := c.GetToken(ctx, s); return err }},
		{api.KindBinding, func(s string) string { return "/v1/bindings/" + s }, func(ctx context.Context, s string) error { _, err := c.GetBinding(ctx, s); return err }},
	}
	for i := range targets {
		for _, s := range []string{"payments", "prod", "API_KEY", "", ".", "..", "a/b", "%2e%2e", "%2F", "a b", "ci@deploy:1", "x?y#z", "\xff", "Ｐayments", strings.Repeat("a", 80)} {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, name string) {
		tg := targets[int(which)%len(targets)]
		want := api.CheckName(tg.kind, name)
		got := tg.call(t.Context(), name)
		if want != nil {
			if tokenward.ErrorCode(got) != tokenward.EINVALID || tokenward.ErrorMessage(got) != tokenward.ErrorMessage(want) {
				t.Fatalf("client, %s %q: got %v; want %v", tg.kind, name, got, want)
			}
		}
		status, b := e.doRaw(t, e.admin, "GET", tg.path(url.PathEscape(name)), "")
		var body api.ErrorBody
		json.Unmarshal(b, &body)
		switch {
		case want != nil && tg.kind == api.KindToken && name == "self":
			// A route of its own (the caller's token): the client refuses
			// the name, the server answers that route.
		case want != nil:
			if status != 400 || body.Error.Message != tokenward.ErrorMessage(want) {
				t.Fatalf("server, %s %q: got %d %s; want 400 %q", tg.kind, name, status, b, tokenward.ErrorMessage(want))
			}
		case status >= 500 || status >= 300 && status < 400 || status == 405 || strings.HasPrefix(body.Error.Message, "no such route"):
			t.Fatalf("server, %s %q accepted by api.CheckName: got %d %s; want its route to answer", tg.kind, name, status, b)
		case (got == nil) != (status < 300) || got != nil && tokenward.ErrorCode(got) != body.Error.Code:
			t.Fatalf("client, %s %q: got %v; want the server's %d %s", tg.kind, name, got, status, b)
		}
	})
}
