package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// gate is a rotator whose Create waits until the test opens it, so
// concurrent requests overlap for certain.
type gate struct {
	entered chan struct{}
	open    chan struct{}
}

func (g *gate) Validate(map[string]string) error { return nil }
func (g *gate) Create(ctx context.Context, _ *rotate.Request) ([]byte, error) {
	g.entered <- struct{}{}
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []byte("gated-new-value-0123456789"), nil
}
func (g *gate) Set(context.Context, *rotate.Request) error    { return nil }
func (g *gate) Test(context.Context, *rotate.Request) error   { return nil }
func (g *gate) Revoke(context.Context, *rotate.Request) error { return nil }

// enableRotation wires rotation into e's engine as the server does, with
// the random rotator and extra test rotators.
func enableRotation(t testing.TB, e *env, extra map[string]rotate.Rotator) {
	t.Helper()
	db := e.core.Store.(*sqlite.DB)
	secrets, err := e.core.RotationSecrets()
	if err != nil {
		t.Fatal(err)
	}
	rotators := map[string]rotate.Rotator{"random": &rotate.Random{}, "tokenward": &rotate.Tokenward{Tokens: e.core.RotationTokens()}}
	for k, v := range extra {
		rotators[k] = v
	}
	m := rotate.NewMachine(db.Rotations(), secrets, rotators)
	m.Now = e.clock.Now
	e.core.Rotation = &core.Rotation{Machine: m, Scheduler: &rotate.Scheduler{Machine: m}, Catalog: db, BulkJobs: db.Rotations()}
}

func decodeAs[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// TestRotationAuthorizationMatrix covers every rotation route with tokens
// that hold rotate on the secret, that hold only read, that hold nothing
// there, and with revoked and missing tokens.
func TestRotationAuthorizationMatrix(t *testing.T) {
	e := MustServe(t)
	enableRotation(t, e, map[string]rotate.Rotator{"exec": &rotate.Exec{}, "webhook": &rotate.Webhook{}})
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": "initial-value-0123456789"}, 200)
	_, rot := e.mustToken(t, e.admin, "rotator", "", "rotate:payments/prod/*", "read:payments/prod/*")
	_, reader := e.mustToken(t, e.admin, "reader", "", "read:payments/prod/*")
	_, rotOnly := e.mustToken(t, e.admin, "rotate-only", "", "rotate:payments/prod/*", "read:payments/prod/HMAC")
	_, other := e.mustToken(t, e.admin, "other", "", "admin:other/*/*")
	revokedID, revoked := e.mustToken(t, e.admin, "revoked", "", "admin:*/*/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)
	policy := map[string]any{"every": "30d", "grace": "1h", "rotator": "random", "config": map[string]string{"length": "24"}}
	const sp = "payments/prod/API_KEY"
	steps := []struct {
		method, path string
		body         any
		who          map[string]int
	}{
		{"PUT", "/v1/rotation/policies/" + sp, policy, map[string]int{e.admin: 200, rot: 200, reader: 403, other: 403, revoked: 401, "": 401}},
		// exec runs a program on the server; http webhooks reach its loopback;
		// a config naming a secret needs read on it
		{"PUT", "/v1/rotation/policies/" + sp, map[string]any{"every": "1h", "rotator": "exec", "config": map[string]string{"command": "/bin/true"}}, map[string]int{rot: 403}},
		{"PUT", "/v1/rotation/policies/" + sp, map[string]any{"every": "1h", "rotator": "webhook", "config": map[string]string{"url": "http://127.0.0.1:1/x", "key_secret": "payments/prod/API_KEY"}}, map[string]int{rot: 403}},
		{"PUT", "/v1/rotation/policies/" + sp, map[string]any{"every": "1h", "rotator": "webhook", "config": map[string]string{"url": "https://example.com/x", "key_secret": "other/prod/HMAC"}}, map[string]int{rot: 403}},
		// a webhook is sent the secret's values: rotate without read may not
		// say where they go
		{"PUT", "/v1/rotation/policies/" + sp, map[string]any{"every": "1h", "rotator": "webhook", "config": map[string]string{"url": "https://example.com/x", "key_secret": "payments/prod/HMAC"}}, map[string]int{rotOnly: 403}},
		{"PUT", "/v1/rotation/policies/" + sp, policy, map[string]int{rotOnly: 200}},
		{"PUT", "/v1/rotation/policies/" + sp, policy, map[string]int{rot: 200}},
		{"GET", "/v1/rotation/policies/" + sp, nil, map[string]int{e.admin: 200, rot: 200, reader: 403, other: 403, revoked: 401, "": 401}},
		{"GET", "/v1/rotation/policies", nil, map[string]int{e.admin: 200, rot: 200, reader: 200, other: 200, revoked: 401, "": 401}},
		{"GET", "/v1/rotation/status", nil, map[string]int{e.admin: 200, rot: 200, reader: 200, revoked: 401, "": 401}},
		{"GET", "/v1/rotation/history/" + sp, nil, map[string]int{e.admin: 200, rot: 200, reader: 403, other: 403, revoked: 401, "": 401}},
		{"POST", "/v1/rotation/bulk", map[string]any{"scope": "payments/*/*", "dry_run": true}, map[string]int{e.admin: 200, rot: 200, reader: 200, revoked: 401, "": 401}},
		{"GET", "/v1/rotation/bulk/bulk_0123456789abcdef01234567", nil, map[string]int{e.admin: 404, rot: 404, reader: 404, revoked: 401, "": 401}},
		{"POST", "/v1/rotation/rotate/" + sp, nil, map[string]int{reader: 403, other: 403, revoked: 401, "": 401}},
		{"POST", "/v1/rotation/rotate/" + sp, nil, map[string]int{rot: 200}},
		{"POST", "/v1/rotation/rotate/" + sp, nil, map[string]int{e.admin: 409}}, // one in flight (grace)
		{"POST", "/v1/rotation/rollback/" + sp, nil, map[string]int{reader: 403, other: 403, revoked: 401, "": 401}},
		{"POST", "/v1/rotation/rollback/" + sp, nil, map[string]int{rot: 200}},
		{"POST", "/v1/rotation/rollback/" + sp, nil, map[string]int{e.admin: 404}}, // nothing left to roll back
		{"POST", "/v1/rotation/policies/" + sp + "/disable", nil, map[string]int{reader: 403, other: 403, revoked: 401, "": 401, rot: 200, e.admin: 200}},
	}
	covered := map[string]bool{}
	for _, st := range steps {
		for tok, want := range st.who {
			if got, b := e.do(t, tok, st.method, st.path, st.body); got != want {
				t.Errorf("%s %s: got %d %s; want %d", st.method, st.path, got, b, want)
			}
		}
		p := st.path
		if strings.HasPrefix(p, "/v1/rotation/bulk/") {
			p = "/v1/rotation/bulk/{id}"
		}
		if i := strings.Index(p, "/payments/"); i >= 0 {
			p = p[:i] + "/{project}/{env}/{name}" + strings.TrimPrefix(p[i:], "/"+sp)
		}
		covered[st.method+" "+p] = true
	}
	var ours []string
	for _, r := range e.api.Routes() {
		if strings.Contains(r, "/v1/rotation/") {
			ours = append(ours, r)
			if !covered[r] {
				t.Errorf("route %s is not in the rotation matrix", r)
			}
		}
	}
	if len(ours) != 10 {
		t.Fatalf("got %d rotation routes; want 10 (extend this matrix for new ones)", len(ours))
	}
	// Lists show only what the token may rotate.
	b := e.mustDo(t, other, "GET", "/v1/rotation/policies", nil, 200)
	if strings.Contains(string(b), "API_KEY") {
		t.Fatalf("a token without rotate there sees the policy: %s", b)
	}
	b = e.mustDo(t, reader, "POST", "/v1/rotation/bulk", map[string]any{"all": true, "dry_run": true}, 200)
	if strings.Contains(string(b), "API_KEY") {
		t.Fatalf("a read-only token's bulk plan names the secret: %s", b)
	}
}

// TestRotationOverHTTP rotates through the API: CURRENT changes, PREVIOUS
// stays readable through grace, run/export deliver CURRENT, rollback
// restores, grace expiry (by the clock) ends the rotation, and no response
// or error carries a value it should not.
func TestRotationOverHTTP(t *testing.T) {
	e := MustServe(t)
	enableRotation(t, e, nil)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	const initial = "initial-value-0123456789"
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": initial}, 200)
	_, tok := e.mustToken(t, e.admin, "rotator", "", "rotate:payments/prod/*", "read:payments/prod/*")
	e.mustDo(t, tok, "PUT", "/v1/rotation/policies/payments/prod/API_KEY", map[string]any{"every": "30d", "grace": "1h", "rotator": "random", "config": map[string]string{"template": "sk_{{rand 24}}"}}, 200)
	pol := decodeAs[api.RotationPolicy](t, e.mustDo(t, tok, "GET", "/v1/rotation/policies/payments/prod/API_KEY", nil, 200))
	if pol.Every != "30d" || pol.Grace != "1h" || !pol.NextAt.Equal(e.clock.Now().Add(30*24*time.Hour)) {
		t.Fatalf("policy: got %+v; want every 30d, grace 1h, next in 30 days", pol)
	}

	r := decodeAs[rotate.Rotation](t, e.mustDo(t, tok, "POST", "/v1/rotation/rotate/payments/prod/API_KEY", nil, 200))
	if r.Step != rotate.StepRevoke || r.CurrentVersion != 1 || r.PendingVersion != 2 {
		t.Fatalf("after rotate now: got step %s, versions %d→%d; want revoke (waiting for grace), 1→2", r.Step, r.CurrentVersion, r.PendingVersion)
	}
	get := func(version string) api.SecretResponse {
		q := ""
		if version != "" {
			q = "?version=" + version
		}
		return decodeAs[api.SecretResponse](t, e.mustDo(t, tok, "GET", "/v1/secrets/payments/prod/API_KEY"+q, nil, 200))
	}
	cur := get("")
	if !strings.HasPrefix(cur.Value, "sk_") || cur.ValueVersion != 2 || cur.Version != 2 {
		t.Fatalf("current: got version %d %q; want version 2 sk_...", cur.ValueVersion, cur.Value[:3])
	}
	if prev := get("previous"); prev.Value != initial || prev.ValueVersion != 1 {
		t.Fatalf("previous: got version %d; want version 1 with the initial value", prev.ValueVersion)
	}
	if c := get("current"); c.Value != cur.Value {
		t.Fatalf("?version=current differs from the default")
	}
	e.mustDo(t, tok, "GET", "/v1/secrets/payments/prod/API_KEY?version=pending", nil, 404)
	e.mustDo(t, tok, "GET", "/v1/secrets/payments/prod/API_KEY?version=latest", nil, 400)
	env := decodeAs[api.EnvValuesResponse](t, e.mustDo(t, tok, "GET", "/v1/values/payments/prod", nil, 200))
	if env.Values["API_KEY"] != cur.Value {
		t.Fatalf("export: got a value other than CURRENT")
	}

	// Rollback within grace, then a second rotation, then grace expiry.
	rb := decodeAs[rotate.Rotation](t, e.mustDo(t, tok, "POST", "/v1/rotation/rollback/payments/prod/API_KEY", nil, 200))
	if rb.Step != rotate.StepFailed || get("").Value != initial {
		t.Fatalf("after rollback: got step %s; want failed (rolled back) and the initial value current", rb.Step)
	}
	e.mustDo(t, tok, "GET", "/v1/secrets/payments/prod/API_KEY?version=previous", nil, 404)
	r2 := decodeAs[rotate.Rotation](t, e.mustDo(t, tok, "POST", "/v1/rotation/rotate/payments/prod/API_KEY", nil, 200))
	if r2.PendingVersion != 3 {
		t.Fatalf("second rotation: got pending version %d; want 3", r2.PendingVersion)
	}
	// A value written by hand after the rotation is not dropped by a
	// rollback to PREVIOUS.
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": "hand-written-0123456789"}, 200)
	e.mustDo(t, tok, "POST", "/v1/rotation/rollback/payments/prod/API_KEY", nil, 409)
	if got := get(""); got.Value != "hand-written-0123456789" || got.Version != 4 {
		t.Fatalf("after a refused rollback: got version %d; want the hand-written version 4", got.Version)
	}
	e.clock.Add(59 * time.Minute)
	if err := e.core.Rotation.Scheduler.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p := get("previous"); p.ValueVersion != 1 {
		t.Fatalf("previous before grace ends: got version %d; want 1", p.ValueVersion)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.core.Rotation.Scheduler.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.mustDo(t, tok, "GET", "/v1/secrets/payments/prod/API_KEY?version=previous", nil, 404)
	h := decodeAs[struct{ Rotations []rotate.Rotation }](t, e.mustDo(t, tok, "GET", "/v1/rotation/history/payments/prod/API_KEY", nil, 200))
	if len(h.Rotations) != 2 || h.Rotations[0].Step != rotate.StepDone || h.Rotations[1].Step != rotate.StepFailed {
		t.Fatalf("history: got %+v; want done, failed (rolled back)", h.Rotations)
	}
	// A plain write during nothing in flight still works and goes above
	// every version.
	w := decodeAs[map[string]any](t, e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": "manual-value-0123456789"}, 200))
	if w["version"].(float64) != 5 {
		t.Fatalf("plain write after rotations: got version %v; want 5", w["version"])
	}
}

// TestConcurrentRotateNowRunsOne sends many rotate-now requests for one
// secret at once: exactly one rotation runs; the rest get 409.
func TestConcurrentRotateNowRunsOne(t *testing.T) {
	e := MustServe(t)
	g := &gate{entered: make(chan struct{}, 16), open: make(chan struct{})}
	enableRotation(t, e, map[string]rotate.Rotator{"gate": g})
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": "initial-value-0123456789"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/rotation/policies/payments/prod/API_KEY", map[string]any{"every": "1h", "rotator": "gate"}, 200)
	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			got, _ := e.do(t, e.admin, "POST", "/v1/rotation/rotate/payments/prod/API_KEY", nil)
			codes <- got
		})
	}
	<-g.entered // one rotation is inside Create
	conflicts := 0
	for range n - 1 {
		if c := <-codes; c == 409 {
			conflicts++
		} else {
			t.Errorf("a concurrent rotate now got %d; want 409", c)
		}
	}
	close(g.open)
	wg.Wait()
	if c := <-codes; c != 200 {
		t.Fatalf("the one rotation got %d; want 200", c)
	}
	h := decodeAs[struct{ Rotations []rotate.Rotation }](t, e.mustDo(t, e.admin, "GET", "/v1/rotation/history/payments/prod/API_KEY", nil, 200))
	if len(h.Rotations) != 1 || conflicts != n-1 {
		t.Fatalf("got %d rotations, %d conflicts; want 1 and %d", len(h.Rotations), conflicts, n-1)
	}
}

// TestBulkRotationOverHTTP rotates 100 secrets with one failing: the other
// 99 rotate and the failure is reported.
func TestBulkRotationOverHTTP(t *testing.T) {
	e := MustServe(t)
	enableRotation(t, e, map[string]rotate.Rotator{"down": &rotate.Exec{}})
	e.core.Rotation.Machine.MaxAttempts = 1
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	for i := range 100 {
		name := fmt.Sprintf("KEY_%03d", i)
		e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/"+name, map[string]any{"value": "v-0123456789-" + name, "owner": "team-x"}, 200)
		pol := map[string]any{"every": "30d", "grace": "1h", "rotator": "random"}
		if i == 42 {
			pol = map[string]any{"every": "30d", "rotator": "down", "config": map[string]string{"command": "/nonexistent/rotator"}}
		}
		e.mustDo(t, e.admin, "PUT", "/v1/rotation/policies/payments/prod/"+name, pol, 200)
	}
	plan := decodeAs[api.BulkRotateResponse[rotate.BulkItem]](t, e.mustDo(t, e.admin, "POST", "/v1/rotation/bulk", map[string]any{"owner": "team-x", "dry_run": true}, 200))
	if len(plan.Items) != 100 || plan.Items[0].Action != "rotate" {
		t.Fatalf("plan: got %d items; want 100 to rotate", len(plan.Items))
	}
	// A run answers at once and goes on in the background.
	job := decodeAs[api.BulkJob[rotate.BulkItem]](t, e.mustDo(t, e.admin, "POST", "/v1/rotation/bulk", map[string]any{"owner": "team-x", "concurrency": 8}, 202))
	if job.Planned != 100 || !strings.HasPrefix(job.ID, "bulk_") {
		t.Fatalf("got job %+v; want 100 planned under a bulk_ id", job)
	}
	// Only the token that started it (or an admin of everything) sees it.
	_, reader := e.mustToken(t, e.admin, "reader", "", "read:payments/*/*")
	e.mustDo(t, reader, "GET", "/v1/rotation/bulk/"+job.ID, nil, 404)
	e.mustDo(t, e.admin, "GET", "/v1/rotation/bulk/"+job.ID+"?wait=1h", nil, 400)
	for job.Status == "running" {
		job = decodeAs[api.BulkJob[rotate.BulkItem]](t, e.mustDo(t, e.admin, "GET", "/v1/rotation/bulk/"+job.ID+"?wait=30s", nil, 200))
	}
	if job.Status != "finished" || job.FinishedAt.IsZero() {
		t.Fatalf("got status %s (%s); want finished", job.Status, job.Error)
	}
	rep := job
	rotated := 0
	for _, it := range rep.Items {
		switch {
		case it.Status == "rotated":
			rotated++
		case it.Secret == "payments/prod/KEY_042" && it.Status == "failed":
		default:
			t.Errorf("%s: got %s (%s)", it.Secret, it.Status, it.Reason)
		}
	}
	if rotated != 99 {
		t.Fatalf("got %d rotated; want 99", rotated)
	}
	st := decodeAs[api.RotationStatusResponse[*rotate.Rotation]](t, e.mustDo(t, e.admin, "GET", "/v1/rotation/status", nil, 200))
	if len(st.Failed) != 1 || st.Failed[0].Path != "payments/prod/KEY_042" || len(st.InFlight) != 99 {
		t.Fatalf("status: got %d failed, %d in flight (grace); want 1 (KEY_042), 99", len(st.Failed), len(st.InFlight))
	}
	if v := decodeAs[api.SecretResponse](t, e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/prod/KEY_042", nil, 200)); v.Value != "v-0123456789-KEY_042" || v.Version != 1 {
		t.Fatalf("the failed secret's CURRENT moved: got version %d", v.Version)
	}
}
