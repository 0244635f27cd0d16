// Package webhook signs, verifies and delivers tokenward's webhooks: JSON
// POSTs signed with HMAC-SHA256 over the timestamp and the body (the audit
// sink, alert and event hooks, the webhook rotator). docs/webhooks.md
// describes the scheme for receivers.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
)

// SignatureHeader is the header of a signed request:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>" (the layout
// Stripe uses), the one scheme of every webhook tokenward sends.
const SignatureHeader = "X-Tokenward-Signature"

// Verification failures; all are EUNAUTHORIZED.
var (
	ErrMalformed    = tokenward.Errorf(tokenward.EUNAUTHORIZED, "webhook signature header is malformed")
	ErrStale        = tokenward.Errorf(tokenward.EUNAUTHORIZED, "webhook timestamp is outside the tolerance")
	ErrBadSignature = tokenward.Errorf(tokenward.EUNAUTHORIZED, "webhook signature does not verify")
)

// Sign returns the SignatureHeader value for body at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks the signature headers of a received request against its
// exact body: one v1 value must be the HMAC (compared in constant time) and
// the timestamp within tolerance of now, so a captured request cannot be
// replayed later. It accepts several v1 values, for secret rollover.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, sigs, err := parseSignature(h.Get(SignatureHeader))
	if err != nil {
		return err
	}
	want := mac(secret, strconv.FormatInt(ts, 10), body)
	ok := false
	for _, s := range sigs {
		ok = hmac.Equal(s, want) || ok
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}

// maxSignatureHeader bounds what parseSignature reads.
const maxSignatureHeader = 1024

// parseSignature parses a SignatureHeader value into its timestamp and its
// v1 signatures. Unknown keys are ignored, so a
// receiver survives a future v2.
func parseSignature(h string) (ts int64, sigs [][]byte, err error) {
	if len(h) > maxSignatureHeader {
		return 0, nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxSignatureHeader)
	}
	ts = -1
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return 0, nil, fmt.Errorf("%w: want key=value pairs", ErrMalformed)
		}
		switch k {
		case "t":
			if ts >= 0 {
				return 0, nil, fmt.Errorf("%w: more than one t", ErrMalformed)
			}
			if ts, err = parseUnix(v); err != nil {
				return 0, nil, err
			}
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return 0, nil, fmt.Errorf("%w: v1 is not a hex HMAC-SHA256", ErrMalformed)
			}
			sigs = append(sigs, b)
		}
	}
	if len(sigs) == 0 {
		return 0, nil, fmt.Errorf("%w: no v1", ErrMalformed)
	}
	if ts < 0 {
		return 0, nil, fmt.Errorf("%w: no t", ErrMalformed)
	}
	return ts, sigs, nil
}

// parseUnix accepts only the canonical decimal form, so one timestamp has
// one spelling (the MAC covers the text).
func parseUnix(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
		return 0, fmt.Errorf("%w: t is not a unix time", ErrMalformed)
	}
	return n, nil
}
