package webhook

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/egress"
)

// MaxAnswer bounds the answer Deliver returns: it reads at most MaxAnswer+1
// bytes, so a caller that uses the answer can tell a longer one.
const MaxAnswer = 64 << 10

// Forever, as Deliverer.MaxAttempts, retries every failure, a 4xx answer
// too, until the context ends: for a sink that may not drop anything.
const Forever = -1

// Deliverer posts JSON bodies to webhooks, signed when given a secret, and
// retries what a retry can fix: network errors, timeouts, 408, 429 and 5xx
// answers, with exponential backoff and jitter. Other answers (redirects are
// never followed) and egress refusals fail at once. Its errors and logs name
// the URL's host only — webhook URLs often hold a secret in their path or
// query — and never hold the body, the answer or the secret.
//
// The zero value is ready to use.
type Deliverer struct {
	// Client sends each attempt. The default connects through
	// internal/egress, which refuses link-local and metadata addresses.
	// Whatever the client, redirects are not followed: one would resend a
	// signed body, which may hold a value, where nobody configured.
	Client *http.Client
	// Timeout bounds each attempt, the answer included; default 10 s.
	Timeout time.Duration
	// MaxAttempts is how often Deliver tries (default 5), or Forever.
	MaxAttempts int
	// Backoff is the first wait between attempts (default 1 s), doubled
	// after each one up to MaxBackoff (default 1 min).
	Backoff, MaxBackoff time.Duration
	Now                 func() time.Time
	// Sleep waits d or until ctx ends. The default waits a random time
	// between d/2 and d (jitter), so that senders that failed together do
	// not retry together; tests replace it to record d and return at once.
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

// defaultClient is shared so that connections are reused, and made on first
// use, not at every start of the binary.
var defaultClient = sync.OnceValue(func() *http.Client { return &http.Client{Transport: egress.Transport()} })

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// CheckURL returns EINVALID unless raw is an absolute http(s) URL. Its
// message does not repeat the URL, which may hold a secret.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return tokenward.Errorf(tokenward.EINVALID, "webhook URL must be an absolute http(s) URL")
	}
	return nil
}

// Deliver posts body to rawURL, signed with secret unless secret is nil,
// retrying as the Deliverer says. It returns the start of a 2xx answer
// (see MaxAnswer). When ctx ends it stops at once with ctx's error.
func (d *Deliverer) Deliver(ctx context.Context, rawURL string, secret, body []byte) ([]byte, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, err
	}
	u, _ := url.Parse(rawURL)
	logger := cmp.Or(d.Logger, slog.New(slog.DiscardHandler))
	attempts, wait := cmp.Or(d.MaxAttempts, 5), cmp.Or(d.Backoff, time.Second)
	for attempt := 1; ; attempt++ {
		answer, retry, err := d.post(ctx, rawURL, secret, body)
		if err == nil {
			return answer, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
		logger.Warn("webhook delivery failed", "host", u.Host, "attempt", attempt, "error", err.Error())
		if attempts != Forever && !retry {
			return nil, err
		}
		if attempts != Forever && attempt >= attempts {
			return nil, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		sleep := sleepJittered
		if d.Sleep != nil {
			sleep = d.Sleep
		}
		if serr := sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("%w (last error: %v)", serr, err)
		}
		wait = min(2*wait, cmp.Or(d.MaxBackoff, time.Minute))
	}
}

// post makes one attempt; retry says whether another may succeed.
func (d *Deliverer) post(ctx context.Context, rawURL string, secret, body []byte) (answer []byte, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(d.Timeout, 10*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return nil, false, errors.New("bad request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tokenward-webhook/1")
	if secret != nil {
		now := time.Now
		if d.Now != nil {
			now = d.Now
		}
		req.Header.Set(SignatureHeader, Sign(secret, now(), body))
	}
	client := *cmp.Or(d.Client, defaultClient())
	client.CheckRedirect = noRedirect
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error repeats the whole URL: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return nil, true, errors.New("request timed out")
			}
			err = ue.Err
		}
		return nil, !errors.Is(err, egress.ErrBlocked), fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	answer, err = io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	switch code := resp.StatusCode; {
	case code/100 == 2 && err != nil:
		return nil, true, errors.New("reading the answer failed")
	case code/100 == 2:
		return answer, false, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return nil, true, &StatusError{Code: code}
	default:
		// The answer is never echoed: it may hold a value.
		return nil, false, &StatusError{Code: code}
	}
}

// StatusError is Deliver's error (possibly wrapped) when the endpoint
// answered other than 2xx, for callers that tell answers apart (the
// rotator: a 4xx refusal is not worth trying again later). It holds the
// status only, never the answer, which may hold a value.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("endpoint answered %d", e.Code) }

func sleepJittered(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(jitter(d, rand.Float64())) // #nosec G404 -- retry jitter, not a secret
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jitter spreads d over [d/2, d) by r in [0, 1).
func jitter(d time.Duration, r float64) time.Duration {
	return d/2 + time.Duration(r*float64(d-d/2))
}
