package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/rotate"
)

// TestBulkJobSeenByEveryServer: a bulk rotation started through one server
// is reported by another on the same store — running, abandoned while its
// heart seems stopped, then finished through ?wait= — to its owner and an
// admin only; its record never holds a value.
func TestBulkJobSeenByEveryServer(t *testing.T) {
	e := MustServe(t)
	g := &gate{entered: make(chan struct{}, 16), open: make(chan struct{})}
	enableRotation(t, e, map[string]rotate.Rotator{"gate": g})
	other := *e // a second server on the same store: none of the first's memory
	other.api = httpapi.NewServer(e.core, nil)
	other.srv = httptest.NewServer(other.api)
	t.Cleanup(other.srv.Close)

	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	for _, name := range []string{"A_KEY", "B_KEY"} {
		e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/"+name, map[string]any{"value": "initial-value-" + name}, 200)
		e.mustDo(t, e.admin, "PUT", "/v1/rotation/policies/payments/prod/"+name, map[string]any{"every": "1h", "rotator": "gate"}, 200)
	}
	_, starter := e.mustToken(t, e.admin, "starter", "", "rotate:payments/prod/*", "read:payments/prod/*")
	_, peer := e.mustToken(t, e.admin, "peer", "", "rotate:payments/prod/*", "read:payments/prod/*")

	job := decodeAs[api.BulkJob[rotate.BulkItem]](t, e.mustDo(t, starter, "POST", "/v1/rotation/bulk", map[string]any{"scope": "payments/prod/*", "concurrency": 2}, 202))
	<-g.entered // running for certain until the gate opens
	path := "/v1/rotation/bulk/" + job.ID

	for _, tc := range []struct {
		name, token, query string
		want               int
		status             string
	}{
		{"owner", starter, "", 200, api.BulkRunning},
		{"owner waits in vain", starter, "?wait=300ms", 200, api.BulkRunning},
		{"admin", e.admin, "", 200, api.BulkRunning},
		{"another token", peer, "", 404, ""},
		{"another token waits", peer, "?wait=1s", 404, ""},
		{"wait too long", starter, "?wait=31s", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := other.mustDo(t, tc.token, "GET", path+tc.query, nil, tc.want)
			if tc.want != 200 {
				return
			}
			got := decodeAs[api.BulkJob[rotate.BulkItem]](t, b)
			if got.Status != tc.status || got.Planned != 2 || !got.StartedAt.Equal(job.StartedAt) {
				t.Fatalf("got %+v; want %s, 2 planned, started at %s", got, tc.status, job.StartedAt)
			}
		})
	}

	// No heartbeat for more than two minutes: its server seems dead.
	e.clock.Add(3 * time.Minute)
	if got := decodeAs[api.BulkJob[rotate.BulkItem]](t, other.mustDo(t, starter, "GET", path+"?wait=5s", nil, 200)); got.Status != api.BulkAbandoned {
		t.Fatalf("got status %s after 3 minutes without a heartbeat; want %s", got.Status, api.BulkAbandoned)
	}
	e.clock.Add(-3 * time.Minute)

	close(g.open)
	for job.Status == api.BulkRunning {
		job = decodeAs[api.BulkJob[rotate.BulkItem]](t, other.mustDo(t, starter, "GET", path+"?wait=30s", nil, 200))
	}
	if job.Status != api.BulkFinished || job.FinishedAt.IsZero() || len(job.Items) != 2 {
		t.Fatalf("got %+v; want finished with 2 items", job)
	}
	for _, it := range job.Items {
		if it.Status != "rotated" || it.RotationID == "" {
			t.Errorf("%s: got %s (%s); want rotated", it.Secret, it.Status, it.Reason)
		}
	}
	if v := decodeAs[api.SecretResponse](t, e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/prod/A_KEY", nil, 200)); v.Value != "gated-new-value-0123456789" {
		t.Fatalf("A_KEY: got version %d; want the rotated value", v.Version)
	}
	rec, err := e.core.Rotation.BulkJobs.BulkJob(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := json.Marshal(rec)
	for _, v := range []string{"gated-new-value", "initial-value-", starter, peer} {
		if strings.Contains(string(stored), v) {
			t.Errorf("the stored job holds a value or token: %s", stored)
		}
	}
	if rec.Owner == "" || rec.Status != api.BulkFinished {
		t.Fatalf("stored record %+v; want its owner's token id and finished", rec)
	}
}
