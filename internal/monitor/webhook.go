package monitor

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
)

// SignatureHeader carries the HMAC-SHA256 signature of a signed payload:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>", the scheme
// Stripe uses, so receivers can reuse their verification code.
const SignatureHeader = "X-Tokenward-Signature"

// Format is the payload shape a webhook receives.
type Format string

// Webhook payload formats.
const (
	FormatSlack  Format = "slack"  // {"text": ..., "blocks": [...]}, unsigned (the URL is the secret)
	FormatSigned Format = "signed" // generic JSON, signed with SignatureHeader
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
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return tokenward.Errorf(tokenward.EINVALID, "webhook URL must be an absolute http(s) URL")
	}
	switch w.Format {
	case FormatSlack:
	case FormatSigned:
		if len(w.Secret) < 16 {
			return tokenward.Errorf(tokenward.EINVALID, "signed webhook to %s: secret must be at least 16 bytes", u.Host)
		}
	default:
		return tokenward.Errorf(tokenward.EINVALID, "webhook to %s: unknown format %q (want slack or signed)", u.Host, tokenward.Printable(string(w.Format)))
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

// Sign returns the SignatureHeader value for body at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// maxSignatureHeader bounds what ParseSignature reads.
const maxSignatureHeader = 1024

// ParseSignature parses a SignatureHeader value into its timestamp and v1
// signatures (several are allowed, for secret rollover).
func ParseSignature(h string) (ts int64, sigs [][]byte, err error) {
	if len(h) > maxSignatureHeader {
		return 0, nil, tokenward.Errorf(tokenward.EINVALID, "signature header longer than %d bytes", maxSignatureHeader)
	}
	haveT := false
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "signature header: want key=value pairs")
		}
		switch k {
		case "t":
			if haveT {
				return 0, nil, tokenward.Errorf(tokenward.EINVALID, "signature header: more than one t")
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
				return 0, nil, tokenward.Errorf(tokenward.EINVALID, "signature header: t is not a unix time")
			}
			ts, haveT = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return 0, nil, tokenward.Errorf(tokenward.EINVALID, "signature header: v1 is not a hex SHA-256 HMAC")
			}
			sigs = append(sigs, b)
		default:
			// Unknown schemes are ignored, so a receiver survives a future v2.
		}
	}
	if !haveT || len(sigs) == 0 {
		return 0, nil, tokenward.Errorf(tokenward.EINVALID, "signature header: want t and at least one v1")
	}
	return ts, sigs, nil
}

// ErrBadSignature is returned by Verify for a signature that does not match
// or is outside the tolerance.
var ErrBadSignature = tokenward.Errorf(tokenward.EUNAUTHORIZED, "webhook signature does not verify")

// Verify checks a SignatureHeader value against body, in constant time, and
// that its timestamp is within tolerance of now (replay protection). It is
// what a receiver written in Go runs; tests use it too.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, sigs, err := ParseSignature(header)
	if err != nil {
		return err
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrBadSignature
	}
	want := mac(secret, strconv.FormatInt(ts, 10), body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// Sender posts payloads to webhooks with retries and exponential backoff.
type Sender struct {
	Client      *http.Client
	MaxAttempts int           // default 5
	Backoff     time.Duration // first wait, doubled per attempt; default 1s
	MaxBackoff  time.Duration // default 1m
	Now         func() time.Time
	// Sleep waits d or until ctx is done; tests replace it to run instantly.
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

// NewSender returns a Sender with the defaults.
func NewSender(logger *slog.Logger) *Sender {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		Client: &http.Client{
			Timeout: 10 * time.Second,
			// A redirect would re-send a signed body somewhere the operator
			// never configured (and turn the POST into a GET): refuse it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		MaxAttempts: 5,
		Backoff:     time.Second,
		MaxBackoff:  time.Minute,
		Now:         time.Now,
		Sleep:       sleepCtx,
		Logger:      logger.WithGroup("webhook"),
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errPermanent marks a failure a retry will not fix (a 4xx other than 408/429).
var errPermanent = errors.New("permanent failure")

// Send posts body to w, signing it when w is FormatSigned, and retries on
// network errors, 408, 429 and 5xx. Errors name the receiver's host only.
func (s *Sender) Send(ctx context.Context, w Webhook, body []byte) error {
	if err := w.Validate(); err != nil {
		return err
	}
	var last error
	wait := s.Backoff
	for attempt := 1; attempt <= s.MaxAttempts; attempt++ {
		last = s.post(ctx, w, body)
		if last == nil {
			return nil
		}
		s.Logger.Warn("delivery failed", "host", w.host(), "attempt", attempt, "error", last.Error())
		if errors.Is(last, errPermanent) || attempt == s.MaxAttempts {
			break
		}
		if err := s.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("webhook to %s: %w", w.host(), err)
		}
		wait = min(2*wait, s.MaxBackoff)
	}
	return fmt.Errorf("webhook to %s: giving up: %w", w.host(), last)
}

func (s *Sender) post(ctx context.Context, w Webhook, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: bad request", errPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tokenward-webhook/1")
	if w.Format == FormatSigned {
		req.Header.Set(SignatureHeader, Sign(w.Secret, s.Now(), body))
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		// A *url.Error repeats the whole URL, which may hold a secret path:
		// keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("status %d", resp.StatusCode)
	default:
		return fmt.Errorf("%w: status %d", errPermanent, resp.StatusCode)
	}
}
