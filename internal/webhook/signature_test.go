package webhook

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	testSecret = []byte("whsec-test-0123456789abcdef-SIGNKEY")
	t0         = time.Unix(1_800_000_000, 0)
)

// TestSignVector pins the scheme: the same bytes docs/webhooks.md computes
// with openssl and Python.
func TestSignVector(t *testing.T) {
	got := Sign([]byte("0123456789abcdef-example"), time.Unix(1767225600, 0), []byte(`{"type":"anomaly"}`))
	want := "t=1767225600,v1=bfec3fe7d312a76a0e9db5ab434ae6bd471f08400bd15b965b1cb5ffdca0f3ed"
	if got != want {
		t.Fatalf("got %s; want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"type":"anomaly"}`)
	good := Sign(testSecret, t0, body)
	ts, v1, _ := strings.Cut(good, ",")
	sig := func(v string) http.Header { return http.Header{SignatureHeader: {v}} }
	unix := strconv.FormatInt(t0.Unix(), 10)
	zeros := "v1=" + strings.Repeat("00", 32)
	tests := []struct {
		name   string
		secret []byte
		h      http.Header
		body   []byte
		now    time.Time
		want   error // nil, or the sentinel in the chain
	}{
		{"good", testSecret, sig(good), body, t0, nil},
		{"good, second v1 matches (rollover)", testSecret, sig(ts + "," + zeros + "," + v1), body, t0, nil},
		{"good, unknown scheme ignored", testSecret, sig(good + ",v2=zz"), body, t0, nil},
		{"good, spaces around pairs", testSecret, sig(ts + ", " + v1), body, t0, nil},
		{"within tolerance", testSecret, sig(good), body, t0.Add(299 * time.Second), nil},
		{"wrong secret", []byte("another-secret-0123456789"), sig(good), body, t0, ErrBadSignature},
		{"tampered body", testSecret, sig(good), []byte(`{"type":"other"}`), t0, ErrBadSignature},
		{"t changed", testSecret, sig("t=1800000001," + v1), body, t0, ErrBadSignature},
		{"expired", testSecret, sig(good), body, t0.Add(6 * time.Minute), ErrStale},
		{"from the future", testSecret, sig(good), body, t0.Add(-6 * time.Minute), ErrStale},
		{"empty", testSecret, http.Header{}, body, t0, ErrMalformed},
		{"garbage", testSecret, sig("hello"), body, t0, ErrMalformed},
		{"no v1", testSecret, sig(ts), body, t0, ErrMalformed},
		{"no t", testSecret, sig(v1), body, t0, ErrMalformed},
		{"t in another header only", testSecret, http.Header{"X-Tokenward-Timestamp": {unix}, SignatureHeader: {v1}}, body, t0, ErrMalformed},
		{"short v1", testSecret, sig("t=1,v1=abcd"), body, t0, ErrMalformed},
		{"v1 not hex", testSecret, sig(ts + ",v1=" + strings.Repeat("zz", 32)), body, t0, ErrMalformed},
		{"two t", testSecret, sig(ts + "," + good), body, t0, ErrMalformed},
		{"t with a leading zero", testSecret, sig("t=0" + unix + "," + v1), body, t0, ErrMalformed},
		{"t with a sign", testSecret, sig("t=+" + unix + "," + v1), body, t0, ErrMalformed},
		{"negative t", testSecret, sig("t=-1," + v1), body, t0, ErrMalformed},
		{"too long", testSecret, sig(good + strings.Repeat(",x=y", 300)), body, t0, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.h, tc.body, tc.now, 5*time.Minute)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v; want %v", err, tc.want)
			}
		})
	}
}

// FuzzParseSignature: the parser never panics, what it accepts has the
// shape Verify relies on, and writing it back canonically parses the same.
func FuzzParseSignature(f *testing.F) {
	f.Add(Sign(testSecret, t0, []byte("x")))
	f.Add("t=1,v1=" + strings.Repeat("ab", 32) + ",v0=zz")
	f.Add("v1=" + strings.Repeat("AB", 32))
	f.Add("t=01,v1=")
	f.Add(" t = 1 ,v1=,,")
	f.Fuzz(func(t *testing.T, h string) {
		ts, sigs, err := parseSignature(h)
		_ = Verify(testSecret, http.Header{SignatureHeader: {h}}, []byte(h), t0, time.Minute)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v; want ErrMalformed in the chain", err)
			}
			return
		}
		if ts < -1 || len(sigs) == 0 {
			t.Fatalf("got t=%d and %d signatures; want t >= -1 and at least one", ts, len(sigs))
		}
		var parts []string
		if ts >= 0 {
			parts = append(parts, "t="+strconv.FormatInt(ts, 10))
		}
		for _, s := range sigs {
			if len(s) != 32 {
				t.Fatalf("got a %d-byte signature; want 32", len(s))
			}
			parts = append(parts, "v1="+hex.EncodeToString(s))
		}
		ts2, sigs2, err := parseSignature(strings.Join(parts, ","))
		if err != nil || ts2 != ts || len(sigs2) != len(sigs) {
			t.Fatalf("reparse of %q: got t=%d, %d signatures, %v; want t=%d, %d signatures", parts, ts2, len(sigs2), err, ts, len(sigs))
		}
		for i := range sigs {
			if string(sigs[i]) != string(sigs2[i]) {
				t.Fatalf("reparse: signature %d changed", i)
			}
		}
	})
}
