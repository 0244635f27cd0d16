package rotate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/webhook"
)

// Webhook is the "webhook" rotator: it asks the owner's HTTPS endpoint to
// create a new value (the answer carries it) and, at the end of grace, to
// revoke the old one. Each request is a signed JSON POST; receivers should
// verify it (docs/webhooks.md) and be idempotent by rotation_id and action,
// since a step may be repeated after a crash. A 4xx answer, but for the
// few that mean "not now" (webhookRefused), fails the step for good
// (Permanent): it is not tried again.
//
// Config: url (https; http only to a loopback address), key_secret (path of
// the secret holding the HMAC key), test (true: also send a "test" call
// with the pending value before it becomes CURRENT).
type Webhook struct {
	Secrets SecretReader
	// Delivery signs and posts each call, and retries it.
	Delivery webhook.Deliverer
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
	if len(key) == 0 {
		// Deliver would send it unsigned.
		return nil, fmt.Errorf("webhook key secret %s is empty", wc.keySecret)
	}
	wr.RotationID, wr.Secret = req.RotationID, req.Path
	body, err := json.Marshal(wr) // #nosec G117 -- Secret is the secret's path (a name), not its value
	if err != nil {
		return nil, err
	}
	answer, err := w.Delivery.Deliver(ctx, wc.url, key, body)
	if err != nil {
		err = fmt.Errorf("webhook %s: %w", wr.Action, err)
		if webhookRefused(err) {
			return nil, Permanent(err)
		}
		return nil, err
	}
	if len(answer) > webhook.MaxAnswer {
		return nil, fmt.Errorf("webhook %s: answer is too large", wr.Action)
	}
	return answer, nil
}

// webhookRefused reports whether err is the endpoint's refusal of the
// request itself: a 4xx answer other than those that mean "not now" (408
// Request Timeout, 409 Conflict, as an idempotent receiver may answer
// while the same call is still in progress, 423 Locked, 425 Too Early, 429
// Too Many Requests). Sending the same request again cannot succeed, so
// the step fails for good. 5xx answers, redirects, timeouts and network
// errors are not refusals.
func webhookRefused(err error) bool {
	var se *webhook.StatusError
	if !errors.As(err, &se) || se.Code < 400 || se.Code > 499 {
		return false
	}
	switch se.Code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusLocked, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return true
}
