package rotate_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/webhook"
)

// receiver is the owner's endpoint: it checks every signature itself (not
// with webhook.Verify), mints values and records revocations.
type receiver struct {
	t   *testing.T
	key []byte
	mu  sync.Mutex
	// script, when set, answers the nth request (from 0) with a status.
	script  []int
	delay   time.Duration
	calls   []WebhookRequest
	valid   map[string]bool
	badSigs int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	hdr := r.Header.Get(webhook.SignatureHeader)
	var ts, sig string
	for _, part := range strings.Split(hdr, ",") {
		k, v, _ := strings.Cut(part, "=")
		if k == "t" {
			ts = v
		} else if k == "v1" {
			sig = v
		}
	}
	m := hmac.New(sha256.New, rc.key)
	fmt.Fprintf(m, "%s.%s", ts, body)
	got, _ := hex.DecodeString(sig)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !hmac.Equal(got, m.Sum(nil)) || webhook.Verify(rc.key, r.Header, body, time.Now(), 5*time.Minute) != nil {
		rc.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var req WebhookRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	n := len(rc.calls)
	rc.calls = append(rc.calls, req)
	if rc.delay > 0 {
		// The timeout case needs a slow endpoint; sleep without the lock so
		// the client's retry is counted while this one still sleeps.
		rc.mu.Unlock()
		time.Sleep(rc.delay)
		rc.mu.Lock()
	}
	if n < len(rc.script) && rc.script[n] != 200 {
		w.WriteHeader(rc.script[n])
		fmt.Fprintf(w, `{"value":"leaky-%d"}`, n)
		return
	}
	switch req.Action {
	case "create":
		v := "whk_" + req.RotationID
		rc.valid[v] = true
		json.NewEncoder(w).Encode(WebhookResponse{Value: v})
	case "revoke", "discard":
		delete(rc.valid, req.Value)
	}
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, key: []byte("webhook-hmac-key-0123456789abcdef"), valid: map[string]bool{}}
	srv := httptest.NewTLSServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

// newWebhookRotation is an env whose rotator wh rotates testPath (its
// value whk_initial, which rc takes as valid) through rc at srv, the HMAC
// key in ops/prod/HOOK_KEY, tested after creation.
func newWebhookRotation(t *testing.T, wh *Webhook, rc *receiver, srv *httptest.Server) *env {
	t.Helper()
	e := newEnv(t, map[string]Rotator{"webhook": wh})
	wh.Secrets = e.secrets
	e.mustPut(t, "ops/prod/HOOK_KEY", string(rc.key))
	e.mustPut(t, testPath, "whk_initial")
	rc.valid["whk_initial"] = true
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "webhook",
		Config: map[string]string{"url": srv.URL + "/rotate", "key_secret": "ops/prod/HOOK_KEY", "test": "true"}})
	return e
}

// webhookRequest is a request to create a value of testPath through rc at
// srv, with wh reading the HMAC key from a new env's ops/prod/HOOK_KEY.
func webhookRequest(t *testing.T, wh *Webhook, rc *receiver, srv *httptest.Server) *Request {
	t.Helper()
	e := newEnv(t, nil)
	wh.Secrets = e.secrets
	e.mustPut(t, "ops/prod/HOOK_KEY", string(rc.key))
	return &Request{RotationID: "rot_1", Path: testPath, Config: map[string]string{"url": srv.URL, "key_secret": "ops/prod/HOOK_KEY"}}
}

func TestWebhookRotatorEndToEnd(t *testing.T) {
	ctx := context.Background()
	rc, srv := newReceiver(t)
	e := newWebhookRotation(t, &Webhook{Delivery: webhook.Deliverer{Client: srv.Client(), Backoff: time.Millisecond}}, rc, srv)

	r, err := e.m.RotateNow(ctx, testPath, "manual")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	cur := e.label(t, testPath, LabelCurrent)
	if cur != "whk_"+r.ID || !rc.valid["whk_initial"] {
		t.Fatalf("after finish: got CURRENT %q, old valid %v; want whk_%s and the old still valid", cur, rc.valid["whk_initial"], r.ID)
	}
	e.clock.Add(time.Hour)
	if err := e.m.Resume(ctx); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	var actions []string
	for _, c := range rc.calls {
		actions = append(actions, c.Action)
	}
	if got, want := strings.Join(actions, ","), "create,test,revoke"; got != want {
		t.Fatalf("calls: got %s; want %s", got, want)
	}
	if last := rc.calls[2]; last.Value != "whk_initial" || last.RotationID != r.ID || last.Secret != testPath {
		t.Fatalf("revoke call: got %+v; want the old value, rotation id and path", last)
	}
	if rc.valid["whk_initial"] || !rc.valid[cur] || rc.badSigs != 0 {
		t.Fatalf("after revoke: got old valid %v, new valid %v, bad signatures %d; want false, true, 0", rc.valid["whk_initial"], rc.valid[cur], rc.badSigs)
	}
}

func TestWebhookRetriesAndFailures(t *testing.T) {
	tests := []struct {
		name      string
		script    []int
		delay     time.Duration
		wantErr   string
		wantCalls int
	}{
		{"two 503s then ok", []int{503, 503}, 0, "", 3},
		{"429 then ok", []int{429}, 0, "", 2},
		{"always 500", []int{500, 500, 500, 500}, 0, "endpoint answered 500", 4},
		{"400 is not retried", []int{400}, 0, "endpoint answered 400", 1},
		{"timeout", nil, 300 * time.Millisecond, "timed out", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, srv := newReceiver(t)
			rc.script, rc.delay = tt.script, tt.delay
			client := srv.Client()
			// Only the timeout case gets a short deadline: on a loaded machine a
			// 100 ms deadline would turn the other cases into timeouts too.
			client.Timeout = 10 * time.Second
			wh := &Webhook{Delivery: webhook.Deliverer{Client: client, MaxAttempts: 4, Backoff: time.Millisecond}}
			if tt.delay > 0 {
				client.Timeout = 100 * time.Millisecond
				wh.Delivery.MaxAttempts = 2
			}
			req := webhookRequest(t, wh, rc, srv)
			v, err := wh.Create(context.Background(), req)
			if tt.wantErr == "" {
				if err != nil || string(v) != "whk_rot_1" {
					t.Fatalf("Create: got %q, %v; want whk_rot_1", v, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Create: got %v; want an error with %q", err, tt.wantErr)
			} else if strings.Contains(err.Error(), "leaky") {
				t.Fatalf("Create error %q echoes the answer body", err)
			}
			rc.mu.Lock()
			calls := len(rc.calls)
			rc.mu.Unlock()
			if calls != tt.wantCalls {
				t.Fatalf("calls: got %d; want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestWebhookConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		c    map[string]string
		ok   bool
	}{
		{"https", map[string]string{"url": "https://hooks.example/rotate", "key_secret": "a/b/C"}, true},
		{"http loopback", map[string]string{"url": "http://127.0.0.1:8080/", "key_secret": "a/b/C"}, true},
		{"http remote", map[string]string{"url": "http://hooks.example/", "key_secret": "a/b/C"}, false},
		{"no key", map[string]string{"url": "https://hooks.example/"}, false},
		{"user info", map[string]string{"url": "https://u:p@hooks.example/", "key_secret": "a/b/C"}, false},
		{"unknown key", map[string]string{"url": "https://hooks.example/", "key_secret": "a/b/C", "x": "1"}, false},
		{"bad test flag", map[string]string{"url": "https://hooks.example/", "key_secret": "a/b/C", "test": "yes"}, false},
	}
	for _, tt := range tests {
		if err := (&Webhook{}).Validate(tt.c); (err == nil) != tt.ok {
			t.Errorf("%s: got %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	var hits int
	var mu sync.Mutex
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer target.Close()
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	e := newEnv(t, nil)
	e.mustPut(t, "ops/prod/HOOK_KEY", "k")
	wh := &Webhook{Secrets: e.secrets, Delivery: webhook.Deliverer{Client: redirect.Client(), Backoff: time.Millisecond}}
	req := &Request{RotationID: "rot_1", Path: testPath, Current: []byte("old-secret-value"),
		Config: map[string]string{"url": redirect.URL, "key_secret": "ops/prod/HOOK_KEY"}}
	err := wh.Revoke(context.Background(), req)
	mu.Lock()
	defer mu.Unlock()
	if err == nil || hits != 0 {
		t.Fatalf("Revoke via a redirect: got err %v, %d hits on the target; want an error and 0 hits", err, hits)
	}
}

// TestWebhookRefusesMetadataAddresses: whoever writes a policy chooses the
// URL; the default client will not connect to link-local or metadata
// addresses (no packet leaves: the refusal comes before connect).
func TestWebhookRefusesMetadataAddresses(t *testing.T) {
	e := newEnv(t, nil)
	e.mustPut(t, "ops/prod/HOOK_KEY", "k")
	wh := &Webhook{Secrets: e.secrets}
	for _, u := range []string{"https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/hook", "https://[fd00:ec2::254]/hook"} {
		t.Run(u, func(t *testing.T) {
			req := &Request{RotationID: "rot_1", Path: testPath, Current: []byte("old-secret-value"),
				Config: map[string]string{"url": u, "key_secret": "ops/prod/HOOK_KEY"}}
			_, err := wh.Create(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), "tokenward does not connect there") {
				t.Fatalf("got %v; want the egress refusal", err)
			}
			if strings.Contains(err.Error(), "old-secret-value") {
				t.Fatalf("error %q holds the current value", err)
			}
		})
	}
}

// A 4xx answer refuses the request itself: the call fails Permanent, so
// the machine does not try the step again. The answers that mean "not
// now", 5xx, and redirects stay transient. A real loopback endpoint
// answers every call with the status.
func TestWebhookRefusalIsPermanent(t *testing.T) {
	tests := []struct {
		status    int
		permanent bool
		calls     int // the Deliverer retries 408, 429 and 5xx itself
	}{
		{400, true, 1}, {401, true, 1}, {403, true, 1}, {404, true, 1}, {410, true, 1}, {422, true, 1},
		{408, false, 2}, {409, false, 1}, {423, false, 1}, {425, false, 1}, {429, false, 2},
		{500, false, 2}, {502, false, 2}, {503, false, 2},
		{307, false, 1},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			rc, srv := newReceiver(t)
			rc.script = []int{tt.status, tt.status}
			wh := &Webhook{Delivery: webhook.Deliverer{Client: srv.Client(), MaxAttempts: 2, Backoff: time.Millisecond}}
			req := webhookRequest(t, wh, rc, srv)
			_, err := wh.Create(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("endpoint answered %d", tt.status)) {
				t.Fatalf("Create: got %v; want endpoint answered %d", err, tt.status)
			}
			if got := IsPermanent(err); got != tt.permanent {
				t.Fatalf("Create error %q: got permanent %v; want %v", err, got, tt.permanent)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if len(rc.calls) != tt.calls {
				t.Fatalf("calls: got %d; want %d", len(rc.calls), tt.calls)
			}
		})
	}
}

// Through the machine: a refused test call ends the rotation at once
// (rolled back, the pending value discarded at the endpoint), a refused
// revoke ends it with the old value still valid; a 5xx is retried later.
func TestWebhookRefusalEndsTheRotation(t *testing.T) {
	tests := []struct {
		name      string
		script    []int // statuses of the calls in order: create, test (x2 if retried), ...
		atRevoke  bool  // the failure is at the end of grace
		wantStep  Step
		wantCalls string
	}{
		{"test refused", []int{200, 403}, false, StepFailed, "create,test,discard"},
		{"test unavailable", []int{200, 503, 503}, false, StepTest, "create,test,test"},
		{"revoke refused", []int{200, 200, 404}, true, StepFailed, "create,test,revoke"},
		{"revoke unavailable", []int{200, 200, 503, 503}, true, StepRevoke, "create,test,revoke,revoke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			rc, srv := newReceiver(t)
			rc.script = tt.script
			e := newWebhookRotation(t, &Webhook{Delivery: webhook.Deliverer{Client: srv.Client(), MaxAttempts: 2, Backoff: time.Millisecond}}, rc, srv)
			var alerts []string
			e.m.Alert = func(_ context.Context, r *Rotation) { alerts = append(alerts, r.Error) }

			r, err := e.m.RotateNow(ctx, testPath, "manual")
			if tt.atRevoke {
				if err != nil || r.Step != StepRevoke {
					t.Fatalf("RotateNow: got step %s, %v; want revoke (grace)", r.Step, err)
				}
				e.clock.Add(time.Hour)
				r, err = e.m.Advance(ctx, r.ID)
			}
			if err == nil || r.Step != tt.wantStep || r.Attempt != 1 || len(alerts) != 1 {
				t.Fatalf("got step %s attempt %d, %d alerts, %v; want %s, 1, 1, an error", r.Step, r.Attempt, len(alerts), err, tt.wantStep)
			}
			permanent := tt.wantStep == StepFailed
			if got := strings.HasSuffix(r.Error, "(attempt 1, permanent: not retried)"); got != permanent || alerts[0] != r.Error || r.NextAt.IsZero() == !permanent {
				t.Fatalf("got error %q, alert %q, next %v; want permanent=%v in both", r.Error, alerts[0], r.NextAt, permanent)
			}
			if strings.Contains(r.Error, "leaky") {
				t.Fatalf("error %q echoes the answer", r.Error)
			}
			rc.mu.Lock()
			var actions []string
			for _, c := range rc.calls {
				actions = append(actions, c.Action)
			}
			oldValid := rc.valid["whk_initial"]
			rc.mu.Unlock()
			if got := strings.Join(actions, ","); got != tt.wantCalls {
				t.Fatalf("calls: got %s; want %s", got, tt.wantCalls)
			}
			cur := e.label(t, testPath, LabelCurrent)
			if (cur == "whk_initial") == tt.atRevoke || !oldValid {
				t.Fatalf("got CURRENT %q, old valid %v; want the new value CURRENT=%v and the old still valid", cur, oldValid, tt.atRevoke)
			}
			if p := e.label(t, testPath, LabelPending); (p != "") != (tt.wantStep == StepTest) {
				t.Fatalf("got PENDING %q; want one only while the test step waits to retry", p)
			}
		})
	}
}
