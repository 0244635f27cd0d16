package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/monitor"
)

// TestEventStreamStopsWhenTokenStops: once the stream's token is revoked or
// expired, no further secret event reaches it (docs/security.md:
// "Revocation through the server takes effect on the next request"); the
// stream ends with an error line instead of delivering events until its
// next heartbeat (15 s later).
func TestEventStreamStopsWhenTokenStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  string
		stop func(e *monEnv, id string)
	}{
		{"revoked", "", func(e *monEnv, id string) {
			e.mustDo(t, e.admin, "POST", "/v1/tokens/"+id+"/revoke", nil, 200)
		}},
		{"expired", "1h", func(e *monEnv, id string) { e.clock.Add(2 * time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustServeMonitor(t)
			e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
			id, reader := e.mustToken(t, e.admin, "reader", tc.ttl, "read:payments/prod/*")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp := e.request(t, ctx, reader, "GET", "/v1/events/stream", nil)
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("got %d; want 200", resp.StatusCode)
			}
			tc.stop(e, id)
			e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": "v_FAKE_REVIEW_VALUE"}, 200)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if len(sc.Bytes()) == 0 {
					continue
				}
				var end api.StreamError
				if json.Unmarshal(sc.Bytes(), &end) == nil && end.Error != "" {
					return // the stream ended, as it must
				}
				var ev monitor.Event
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatal(err)
				}
				if ev.Resource == "payments/prod/STRIPE_KEY" {
					t.Fatalf("%s token still got event %s %s v%d", tc.name, ev.Type, ev.Resource, ev.Version)
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("the stream neither ended nor sent anything within 5 s")
			}
		})
	}
}

// TestRefusedRequestAuditResource: a request refused before its handler
// runs (here: no token) is audited under the resource its path names, of
// the kind the route's wildcard holds — as the handler names it when it
// runs — and not every {id} as a token.
func TestRefusedRequestAuditResource(t *testing.T) {
	e := MustServe(t)
	var mu sync.Mutex
	var got []*tokenward.AuditEntry
	e.api.Audit = func(_ context.Context, a *tokenward.AuditEntry) error {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
		return nil
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/v1/tokens/tok123", "token:tok123"},
		{"POST", "/v1/tokens/tok123/revoke", "token:tok123"},
		{"GET", "/v1/leases/lease123", "lease:lease123"},
		{"POST", "/v1/leases/lease123/renew", "lease:lease123"},
		{"POST", "/v1/leases/lease123/revoke", "lease:lease123"},
		{"POST", "/v1/anomalies/anom123/ack", "anomaly:anom123"},
		{"GET", "/v1/rotation/bulk/bulk123", "bulk:bulk123"},
		{"GET", "/v1/bindings/github-main", "binding:github-main"},
		{"DELETE", "/v1/gateway/routes/stripe", "gateway:stripe"},
		{"GET", "/v1/gateway/db/routes/orders", "gateway:orders"},
		{"GET", "/v1/secrets/payments/prod/KEY", "payments/prod/KEY"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			if status, b := e.do(t, "", tc.method, tc.path, nil); status != 401 {
				t.Fatalf("got %d %s; want 401", status, b)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0].Resource != tc.want {
				var res []string
				for _, a := range got {
					res = append(res, a.Resource)
				}
				t.Fatalf("audited resources %q; want one %q", res, tc.want)
			}
		})
	}
}

// TestDBRouteNameInPath: a database gateway route's name that the mux
// would clean away is refused with the message the client gives for it
// (a route name's, not a secret name's).
func TestDBRouteNameInPath(t *testing.T) {
	e := MustServe(t)
	for _, seg := range []string{"%2e%2e", "%2e", "a%2Fb"} {
		name, _ := url.PathUnescape(seg)
		want := api.CheckName(api.KindDBRoute, name)
		status, b := e.doRaw(t, e.admin, "GET", "/v1/gateway/db/routes/"+seg, "")
		var body api.ErrorBody
		json.Unmarshal(b, &body)
		if want == nil || status != 400 || body.Error.Message != tokenward.ErrorMessage(want) {
			t.Errorf("GET /v1/gateway/db/routes/%s: got %d %s; want 400 %q", seg, status, b, tokenward.ErrorMessage(want))
		}
	}
}
