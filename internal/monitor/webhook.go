package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/webhook"
)

// Format is the payload shape a webhook receives.
type Format string

// Webhook payload formats.
const (
	FormatSlack  Format = "slack"  // {"text": ..., "blocks": [...]}, unsigned (the URL is the secret)
	FormatSigned Format = "signed" // generic JSON, signed as docs/webhooks.md says
)

// Webhook is one receiver. Its URL (Slack URLs hold a secret path) and
// Secret are never logged or put into an error.
type Webhook struct {
	URL    string
	Format Format
	Secret []byte // HMAC key for FormatSigned; at least 16 bytes
}

// Validate checks a webhook's configuration.
func (w *Webhook) Validate() error {
	if err := webhook.CheckURL(w.URL); err != nil {
		return err
	}
	switch w.Format {
	case FormatSlack:
	case FormatSigned:
		if len(w.Secret) < 16 {
			return tokenward.Errorf(tokenward.EINVALID, "signed webhook to %s: secret must be at least 16 bytes", w.host())
		}
	default:
		return tokenward.Errorf(tokenward.EINVALID, "webhook to %s: unknown format %q (want slack or signed)", w.host(), tokenward.Printable(string(w.Format)))
	}
	return nil
}

// host returns the URL's host only: safe to log.
func (w *Webhook) host() string {
	if u, err := url.Parse(w.URL); err == nil {
		return u.Host
	}
	return "(bad url)"
}

// Sender posts payloads to webhooks; the Deliverer retries them.
type Sender struct {
	webhook.Deliverer
}

// NewSender returns a Sender with the defaults.
func NewSender(logger *slog.Logger) *Sender {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{webhook.Deliverer{Now: time.Now, Logger: logger.WithGroup("webhook")}}
}

// Send posts body to w, signed when w is FormatSigned. Errors name the
// receiver's host only.
func (s *Sender) Send(ctx context.Context, w Webhook, body []byte) error {
	if err := w.Validate(); err != nil {
		return err
	}
	var secret []byte
	if w.Format == FormatSigned {
		secret = w.Secret
	}
	if _, err := s.Deliver(ctx, w.URL, secret, body); err != nil {
		return fmt.Errorf("webhook to %s: %w", w.host(), err)
	}
	return nil
}
