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
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/tokenward/tokenward/internal/rotate"
)

// receiver is the owner's endpoint: it checks every signature itself (not
// with our VerifySignature), mints values and records revocations.
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
	hdr := r.Header.Get(SignatureHeader)
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
	if !hmac.Equal(got, m.Sum(nil)) || VerifySignature(rc.key, body, hdr, time.Now(), 5*time.Minute) != nil {
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

func TestWebhookRotatorEndToEnd(t *testing.T) {
	ctx := context.Background()
	rc, srv := newReceiver(t)
	wh := &Webhook{Client: srv.Client(), Backoff: time.Millisecond}
	e := newEnv(t, map[string]Rotator{"webhook": wh})
	wh.Secrets = e.secrets
	e.mustPut(t, "ops/prod/HOOK_KEY", string(rc.key))
	e.mustPut(t, testPath, "whk_initial")
	rc.valid["whk_initial"] = true
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "webhook",
		Config: map[string]string{"url": srv.URL + "/rotate", "key_secret": "ops/prod/HOOK_KEY", "test": "true"}})

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
			wh := &Webhook{Client: client, Attempts: 4, Backoff: time.Millisecond}
			if tt.delay > 0 {
				client.Timeout = 100 * time.Millisecond
				wh.Attempts = 2
			}
			e := newEnv(t, nil)
			wh.Secrets = e.secrets
			e.mustPut(t, "ops/prod/HOOK_KEY", string(rc.key))
			req := &Request{RotationID: "rot_1", Path: testPath,
				Config: map[string]string{"url": srv.URL, "key_secret": "ops/prod/HOOK_KEY"}}
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

func TestVerifySignature(t *testing.T) {
	key, body := []byte("k"), []byte(`{"action":"create"}`)
	now := time.Unix(1_700_000_000, 0)
	good := Sign(key, body, now)
	tests := []struct {
		name   string
		key    []byte
		body   []byte
		header string
		now    time.Time
		ok     bool
	}{
		{"good", key, body, good, now, true},
		{"within tolerance", key, body, good, now.Add(4 * time.Minute), true},
		{"too old", key, body, good, now.Add(6 * time.Minute), false},
		{"other key", []byte("x"), body, good, now, false},
		{"other body", key, []byte(`{}`), good, now, false},
		{"no v1", key, body, "t=1700000000", now, false},
		{"garbage", key, body, "nonsense", now, false},
		{"bad hex", key, body, "t=1700000000,v1=zz", now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.key, tt.body, tt.header, tt.now, 5*time.Minute)
			if (err == nil) != tt.ok {
				t.Fatalf("got %v; want ok=%v", err, tt.ok)
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

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("k"), []byte("body"), int64(1_700_000_000), "t=1700000000,v1=00")
	f.Add([]byte(""), []byte(""), int64(0), "v1=,t=")
	f.Fuzz(func(t *testing.T, key, body []byte, unix int64, header string) {
		if unix < 0 || unix > 1<<40 {
			return
		}
		at := time.Unix(unix, 0)
		_ = VerifySignature(key, body, header, at, time.Minute) // never panics
		h := Sign(key, body, at)
		if err := VerifySignature(key, body, h, at, time.Minute); err != nil {
			t.Fatalf("VerifySignature(Sign(...)): got %v; want nil", err)
		}
		if err := VerifySignature(key, append(body, 'x'), h, at, time.Minute); err == nil {
			t.Fatalf("VerifySignature of another body: got nil; want an error")
		}
	})
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
	wh := &Webhook{Secrets: e.secrets, Client: redirect.Client(), Backoff: time.Millisecond}
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
	wh := &Webhook{Secrets: e.secrets, Attempts: 1, Backoff: time.Millisecond}
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
