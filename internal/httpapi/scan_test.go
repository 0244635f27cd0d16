package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/scan"
)

func fingerprintsOf(t *testing.T, e *env, token string, key []byte) []string {
	t.Helper()
	b := e.mustDo(t, token, "POST", "/v1/scan/fingerprints", map[string]string{"key": base64.StdEncoding.EncodeToString(key)}, 200)
	var resp api.ScanFingerprintsResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range resp.Fingerprints {
		out = append(out, f.Path+" "+f.HMAC)
	}
	slices.Sort(out)
	return out
}

func fp(key []byte, path, value string) string {
	sum := scan.ManagedFingerprint(key, []byte(value))
	return path + " " + hex.EncodeToString(sum[:])
}

func sorted(xs ...string) []string { slices.Sort(xs); return xs }

// TestScanFingerprintsAuthorization checks that each token gets the
// fingerprints of exactly the secrets it may read (CURRENT; a value a
// plain write replaced is not PREVIOUS), computed as the scanner computes
// them, and that missing,
// revoked and malformed requests are refused.
func TestScanFingerprintsAuthorization(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "other", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": "first-api-key-value-1"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": "second-api-key-value-2"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/DB_PASS", map[string]any{"value": "db-password-value-3"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/other/prod/TOKEN", map[string]any{"value": "other-token-value-4"}, 200)
	_, reader := e.mustToken(t, e.admin, "reader", "", "read:payments/prod/API_KEY")
	_, writer := e.mustToken(t, e.admin, "writer", "", "write:payments/prod/*")
	revokedID, revoked := e.mustToken(t, e.admin, "revoked", "", "admin:*/*/*")
	e.mustDo(t, e.admin, "POST", "/v1/tokens/"+revokedID+"/revoke", nil, 200)

	key := make([]byte, 32)
	rand.Read(key)
	for _, tc := range []struct {
		who, token string
		want       []string
	}{
		{"admin", e.admin, sorted(
			fp(key, "payments/prod/API_KEY", "second-api-key-value-2"),
			fp(key, "payments/prod/DB_PASS", "db-password-value-3"),
			fp(key, "other/prod/TOKEN", "other-token-value-4"))},
		{"reader of one secret", reader, sorted(
			fp(key, "payments/prod/API_KEY", "second-api-key-value-2"))},
		{"writer without read", writer, nil},
	} {
		t.Run(tc.who, func(t *testing.T) {
			if got := fingerprintsOf(t, e, tc.token, key); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q; want %q", got, tc.want)
			}
		})
	}
	good := map[string]string{"key": base64.StdEncoding.EncodeToString(key)}
	for _, tc := range []struct {
		name, token string
		body        any
		want        int
	}{
		{"no token", "", good, 401},
		{"revoked token", revoked, good, 401},
		{"short key", e.admin, map[string]string{"key": base64.StdEncoding.EncodeToString(key[:16])}, 400},
		{"not base64", e.admin, map[string]string{"key": "!!not base64!!"}, 400},
		{"no key", e.admin, map[string]string{}, 400},
		{"unknown field", e.admin, map[string]string{"key": good["key"], "value": "x"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, b := e.do(t, tc.token, "POST", "/v1/scan/fingerprints", tc.body); got != tc.want {
				t.Fatalf("got %d %s; want %d", got, b, tc.want)
			}
		})
	}
	// The route is the only one of its group; the matrix above covers it.
	n := 0
	for _, r := range e.api.Routes() {
		if strings.Contains(r, "/v1/scan/") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("got %d scan routes; want 1 (extend this test)", n)
	}
}

// TestScanFingerprintsPrevious checks that after a rotation the PREVIOUS
// value is fingerprinted beside the new CURRENT.
func TestScanFingerprintsPrevious(t *testing.T) {
	e := MustServe(t)
	enableRotation(t, e, nil)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": "old-value-before-rotation"}, 200)
	e.mustDo(t, e.admin, "PUT", "/v1/rotation/policies/payments/prod/API_KEY",
		map[string]any{"every": "30d", "grace": "1h", "rotator": "random", "config": map[string]string{"length": "24"}}, 200)
	e.mustDo(t, e.admin, "POST", "/v1/rotation/rotate/payments/prod/API_KEY", nil, 200)
	var cur struct{ Value string }
	if err := json.Unmarshal(e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/prod/API_KEY", nil, 200), &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Value == "" || cur.Value == "old-value-before-rotation" {
		t.Fatalf("got CURRENT %q after rotation; want a new value", cur.Value)
	}
	key := make([]byte, 32)
	rand.Read(key)
	want := sorted(fp(key, "payments/prod/API_KEY", cur.Value), fp(key, "payments/prod/API_KEY", "old-value-before-rotation"))
	if got := fingerprintsOf(t, e, e.admin, key); !slices.Equal(got, want) {
		t.Fatalf("got %q; want %q", got, want)
	}
}

// TestScanFingerprintsNoLeak checks that neither the key nor a value
// reaches the audit entry or the response.
func TestScanFingerprintsNoLeak(t *testing.T) {
	e := MustServe(t)
	var mu sync.Mutex
	var entries []string
	e.api.Audit = func(_ context.Context, en *tokenward.AuditEntry) error {
		b, _ := json.Marshal(en)
		mu.Lock()
		entries = append(entries, string(b))
		mu.Unlock()
		return nil
	}
	const value = "managed-value-never-leaves-0123"
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/API_KEY", map[string]any{"value": value}, 200)
	key := make([]byte, 32)
	rand.Read(key)
	b64 := base64.StdEncoding.EncodeToString(key)
	body := e.mustDo(t, e.admin, "POST", "/v1/scan/fingerprints", map[string]string{"key": b64}, 200)
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(entries, "\n")
	if !strings.Contains(all, "scan.fingerprints") {
		t.Fatalf("got audit %s; want a scan.fingerprints entry", all)
	}
	for _, s := range []string{b64, hex.EncodeToString(key), value} {
		if strings.Contains(all, s) || strings.Contains(string(body), s) {
			t.Fatalf("got %q in the audit trail or response; want it nowhere", s)
		}
	}
}

// FuzzScanFingerprintsRequest posts arbitrary bodies: the answer is 200 or
// 400, never a server error, and never echoes the body's key.
func FuzzScanFingerprintsRequest(f *testing.F) {
	e := MustServe(f)
	f.Add(`{"key":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`)
	f.Add(`{"key":"AAAA"}`)
	f.Add(`{"key":1}`)
	f.Add(`{}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/scan/fingerprints", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.StatusCode; got != 200 && got != 400 {
			t.Fatalf("got %d %s; want 200 or 400", got, b)
		}
		var in struct{ Key string }
		if json.Unmarshal([]byte(body), &in) == nil && len(in.Key) >= 8 && strings.Contains(string(b), in.Key) {
			t.Fatalf("got %s; want the key not echoed", b)
		}
	})
}
