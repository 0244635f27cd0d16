package rotate

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/egress"
)

// SignatureHeader carries the webhook signature: "t=<unix>,v1=<hex>", where
// v1 is HMAC-SHA256(key, "<t>.<body>").
const SignatureHeader = "X-Tokenward-Signature"

// Webhook is the "webhook" rotator: it asks the owner's HTTPS endpoint to
// create a new value (the answer carries it) and, at the end of grace, to
// revoke the old one. Each request is a signed JSON POST; receivers should
// verify it with VerifySignature and be idempotent by rotation_id and
// action, since a step may be repeated after a crash.
//
// Config: url (https; http only to a loopback address), key_secret (path of
// the secret holding the HMAC key), test (true: also send a "test" call
// with the pending value before it becomes CURRENT).
type Webhook struct {
	Secrets SecretReader
	// Client is the HTTP client; its timeout bounds each attempt.
	// Default: 10 s timeout.
	Client *http.Client
	// Attempts is how often a call is tried (default 4); retries wait
	// Backoff, doubling (default 500 ms).
	Attempts int
	Backoff  time.Duration
	Now      func() time.Time
}

// WebhookRequest is the JSON body the webhook receives.
type WebhookRequest struct {
	Action     string `json:"action"` // create, test, revoke, discard
	RotationID string `json:"rotation_id"`
	Secret     string `json:"secret"`
	// Value is the value the action is about: the pending one for test and
	// discard, the old one for revoke; empty for create.
	Value   string `json:"value,omitempty"`
	Version int    `json:"version,omitempty"`
}

// WebhookResponse is the JSON answer to create.
type WebhookResponse struct {
	Value string `json:"value"`
}

// maxWebhookResponse bounds the answer we read.
const maxWebhookResponse = 64 << 10

// Validate implements Rotator.
func (w *Webhook) Validate(config map[string]string) error {
	_, err := parseWebhookConfig(config)
	return err
}

type webhookConfig struct {
	url       string
	keySecret string
	test      bool
}

func parseWebhookConfig(c map[string]string) (*webhookConfig, error) {
	for k := range c {
		switch k {
		case "url", "key_secret", "test":
		default:
			return nil, errInvalid("webhook rotator: unknown config key %q", tokenward.Printable(k))
		}
	}
	wc := &webhookConfig{url: c["url"], keySecret: c["key_secret"]}
	if wc.url == "" || wc.keySecret == "" {
		return nil, errInvalid("webhook rotator: url and key_secret are required")
	}
	u, err := url.Parse(wc.url)
	if err != nil || u.Host == "" || u.User != nil {
		return nil, errInvalid("webhook rotator: url %q: want https://host/path", tokenward.Printable(wc.url))
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, errInvalid("webhook rotator: url must be https (http only to loopback)")
		}
	default:
		return nil, errInvalid("webhook rotator: url must be https")
	}
	switch c["test"] {
	case "", "false":
	case "true":
		wc.test = true
	default:
		return nil, errInvalid("webhook rotator: test: want true or false")
	}
	return wc, nil
}

// webhookTransport is the default client's transport, shared so that
// connections are reused.
var webhookTransport = egress.Transport()

// Sign returns the signature header value for body at t.
func Sign(key, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a signature header against body: the HMAC must
// match (compared in constant time) and t be within tolerance of now, so a
// captured request cannot be replayed later.
func VerifySignature(key, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("signature header: want t=<unix>,v1=<hex>")
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return errors.New("signature header: v1 is not hex")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return errors.New("signature does not match")
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature timestamp is outside the tolerance")
	}
	return nil
}

// Create implements Rotator.
func (w *Webhook) Create(ctx context.Context, req *Request) ([]byte, error) {
	body, err := w.call(ctx, req, WebhookRequest{Action: "create"})
	if err != nil {
		return nil, err
	}
	var resp WebhookResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.Value == "" {
		return nil, errors.New("webhook create: answer is not {\"value\": \"...\"}")
	}
	return []byte(resp.Value), nil
}

// Set implements Rotator: the endpoint made the value in Create, so it
// already accepts it.
func (w *Webhook) Set(context.Context, *Request) error { return nil }

// Test implements Rotator: with test=true, the endpoint confirms the
// pending value works.
func (w *Webhook) Test(ctx context.Context, req *Request) error {
	wc, err := parseWebhookConfig(req.Config)
	if err != nil || !wc.test {
		return err
	}
	_, err = w.call(ctx, req, WebhookRequest{Action: "test", Value: string(req.Pending), Version: req.PendingVersion})
	return err
}

// Revoke implements Rotator.
func (w *Webhook) Revoke(ctx context.Context, req *Request) error {
	_, err := w.call(ctx, req, WebhookRequest{Action: "revoke", Value: string(req.Current), Version: req.CurrentVersion})
	return err
}

// Discard implements Discarder: the pending value will never be used.
func (w *Webhook) Discard(ctx context.Context, req *Request) error {
	_, err := w.call(ctx, req, WebhookRequest{Action: "discard", Value: string(req.Pending), Version: req.PendingVersion})
	return err
}

// errPermanent marks an answer retrying cannot fix (a 4xx).
type errPermanent struct{ error }

func (w *Webhook) call(ctx context.Context, req *Request, wr WebhookRequest) ([]byte, error) {
	wc, err := parseWebhookConfig(req.Config)
	if err != nil {
		return nil, err
	}
	if w.Secrets == nil {
		return nil, errors.New("webhook rotator: no secret reader configured")
	}
	key, err := w.Secrets.ReadSecret(ctx, wc.keySecret)
	if err != nil {
		return nil, fmt.Errorf("read webhook key secret %s: %w", wc.keySecret, err)
	}
	wr.RotationID, wr.Secret = req.RotationID, req.Path
	body, err := json.Marshal(wr)
	if err != nil {
		return nil, err
	}
	attempts, backoff := w.Attempts, w.Backoff
	if attempts <= 0 {
		attempts = 4
	}
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	var last error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("webhook %s: %w (last error: %v)", wr.Action, ctx.Err(), last)
			case <-t.C:
			}
			backoff *= 2
		}
		answer, err := w.post(ctx, wc.url, key, body)
		if err == nil {
			return answer, nil
		}
		last = err
		var perm errPermanent
		if errors.As(err, &perm) {
			break
		}
	}
	return nil, fmt.Errorf("webhook %s: %w", wr.Action, last)
}

func (w *Webhook) post(ctx context.Context, u string, key, body []byte) ([]byte, error) {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	// The endpoint is chosen by whoever configures the policy: the default
	// client refuses link-local and metadata addresses (egress).
	client := &http.Client{Timeout: 10 * time.Second, Transport: webhookTransport}
	if w.Client != nil {
		c := *w.Client
		client = &c
	}
	// A redirect would resend the body, which may hold a value, to
	// wherever the endpoint points: never follow one.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, errPermanent{errors.New("bad request url")}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "tokenward-rotate")
	hr.Header.Set(SignatureHeader, Sign(key, body, now()))
	resp, err := client.Do(hr)
	if err != nil {
		// *url.Error quotes the URL, not the body: safe, but keep it short.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return nil, errors.New("request timed out")
			}
			return nil, fmt.Errorf("request failed: %v", ue.Err)
		}
		return nil, errors.New("request failed")
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse+1))
	if err != nil {
		return nil, errors.New("reading the answer failed")
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		// the answer body is never echoed: it may hold a value
		return nil, fmt.Errorf("endpoint answered %d", resp.StatusCode)
	default:
		return nil, errPermanent{fmt.Errorf("endpoint answered %d", resp.StatusCode)}
	}
	if len(answer) > maxWebhookResponse {
		return nil, errPermanent{errors.New("answer is too large")}
	}
	return answer, nil
}
