package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/httpapi"
)

// The HTTP abuse test (issue #15, "Hostile input"): hostile requests
// against a real server on loopback, built by httpapi.NewHTTPServer as the
// server command builds it (its header limit and timeouts), with a short
// ReadHeaderTimeout so the slow client is cut off quickly. Every answer is
// checked for a 500 and for a secret value or token in its body.

// abuseEnv is a server for the abuse test.
type abuseEnv struct {
	addr   string
	clock  *clock
	admin  string
	canary string // the one secret value; no refusal may show it

	mu      sync.Mutex
	entries []tokenward.AuditEntry
}

func mustServeAbuse(tb testing.TB, tokenLimit, failureLimit httpapi.Limit) *abuseEnv {
	tb.Helper()
	c, clk, admin := mustCore(tb)
	e := &abuseEnv{clock: clk, admin: admin, canary: "canary-Zq8vX2mKp4"}
	a := httpapi.NewServer(c, nil)
	a.TokenLimit, a.AuthFailureLimit = tokenLimit, failureLimit
	a.Audit = func(_ context.Context, en *tokenward.AuditEntry) error {
		e.mu.Lock()
		e.entries = append(e.entries, *en)
		e.mu.Unlock()
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := httpapi.NewHTTPServer(ln.Addr().String(), a, slog.New(slog.DiscardHandler))
	srv.ReadHeaderTimeout = 200 * time.Millisecond
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	e.addr = ln.Addr().String()
	e.mustRaw(tb, jsonReq("POST", "/v1/projects", admin, `{"name":"payments","environments":["prod"]}`), 201)
	e.mustRaw(tb, jsonReq("POST", "/v1/projects", admin, `{"name":"other","environments":["prod"]}`), 201)
	e.mustRaw(tb, jsonReq("PUT", "/v1/secrets/payments/prod/KEY", admin, `{"value":"`+e.canary+`"}`), 200)
	e.mustRaw(tb, jsonReq("PUT", "/v1/secrets/other/prod/KEY", admin, `{"value":"`+e.canary+`-other"}`), 200)
	return e
}

// jsonReq is the text of a request with a JSON body (none when body is "").
func jsonReq(method, path, token, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: tokenward\r\nConnection: close\r\n", method, path)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

// raw sends req's bytes as they are (no client cleans the path or fixes
// the framing) and reads the answer.
func (e *abuseEnv) raw(tb testing.TB, req string) (*http.Response, string) {
	tb.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second)) // a hang fails the test, it is not asserted on
	// The server may answer and close before it has read everything (a
	// body or header too large): a failed write is not the test's concern.
	go io.WriteString(conn, req)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (e *abuseEnv) mustRaw(tb testing.TB, req string, want int) string {
	tb.Helper()
	resp, body := e.raw(tb, req)
	if resp.StatusCode != want {
		tb.Fatalf("%s: got %d %s; want %d", firstLine(req), resp.StatusCode, body, want)
	}
	return body
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return trunc(l, 120) }

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// checkLeak fails when body holds a secret value or a token.
func (e *abuseEnv) checkLeak(tb testing.TB, body string, tokens ...string) {
	tb.Helper()
	for _, s := range append([]string{e.canary, e.admin}, tokens...) {
		if s != "" && strings.Contains(body, s) {
			tb.Fatalf("answer holds a secret value or token: %s", trunc(body, 300))
		}
	}
}

func errorCode(body string) string {
	var eb api.ErrorBody
	json.Unmarshal([]byte(body), &eb)
	return eb.Error.Code
}

func TestAbuseRequests(t *testing.T) {
	e := mustServeAbuse(t, httpapi.Limit{}, httpapi.Limit{})
	a := e.admin
	put := "/v1/secrets/payments/prod/KEY"
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	for _, tc := range []struct {
		name string
		req  string
		want int
		code string // the error code, when the answer is the API's error body
	}{
		// Sizes.
		{"oversized body", jsonReq("PUT", put, a, `{"value":"`+strings.Repeat("x", 1<<20)+`"}`), 413, tokenward.ETOOLARGE},
		{"oversized header", "GET " + put + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + a + "\r\nX-Big: " + strings.Repeat("h", 64<<10) + "\r\n\r\n", 431, ""},
		{"very many headers", "GET " + put + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + a + "\r\n" + strings.Repeat("X-A: b\r\n", 8<<10) + "\r\n", 431, ""},
		// Framing.
		{"chunk size not hex", "PUT " + put + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " + a + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400, tokenward.EINVALID},
		{"chunk longer than its size", "PUT " + put + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " + a + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"value\":\"x\"}\r\n0\r\n\r\n", 400, tokenward.EINVALID},
		{"chunk without its CRLF", "PUT " + put + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " + a + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}0\r\n\r\n", 400, tokenward.EINVALID},
		{"chunk size overflows", "PUT " + put + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " + a + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n", 400, tokenward.EINVALID},
		{"chunked and content-length", "PUT " + put + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + a + "\r\nContent-Type: application/json\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400, ""},
		{"two content-lengths", "PUT " + put + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + a + "\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 13\r\n\r\n{}", 400, ""},
		{"unknown transfer-encoding", "PUT " + put + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + a + "\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, ""},
		// Paths: no way out of payments/prod to the other project's KEY.
		{"dot-dot", jsonReq("GET", "/v1/secrets/payments/prod/../../other/prod/KEY", a, ""), 400, tokenward.EINVALID},
		{"encoded dot-dot", jsonReq("GET", "/v1/secrets/payments/%2e%2e/other/prod/KEY", a, ""), 400, tokenward.EINVALID},
		{"encoded dot-dot upper", jsonReq("GET", "/v1/secrets/payments/prod/%2E%2E", a, ""), 400, tokenward.EINVALID},
		{"encoded slash", jsonReq("GET", "/v1/secrets/payments/prod%2f..%2f..%2fother%2fprod/KEY", a, ""), 400, tokenward.EINVALID},
		{"encoded slash in name", jsonReq("GET", "/v1/secrets/payments/prod/..%2F..%2Fother%2Fprod%2FKEY", a, ""), 400, tokenward.EINVALID},
		{"double-encoded dot-dot", jsonReq("GET", "/v1/secrets/payments/prod/%252e%252e", a, ""), 400, tokenward.EINVALID},
		{"empty segment", jsonReq("GET", "/v1/secrets/payments//prod/KEY", a, ""), 400, tokenward.EINVALID},
		{"dot segment", jsonReq("GET", "/v1/secrets/payments/./prod/KEY", a, ""), 400, tokenward.EINVALID},
		{"backslash", jsonReq("GET", `/v1/secrets/payments/prod/..\..\other\prod\KEY`, a, ""), 400, tokenward.EINVALID},
		{"NUL in name", jsonReq("GET", "/v1/secrets/payments/prod/KEY%00", a, ""), 400, tokenward.EINVALID},
		// Unicode confusables and other look-alikes are not names.
		{"cyrillic a in project", jsonReq("POST", "/v1/projects", a, `{"name":"p\u0430yments"}`), 400, tokenward.EINVALID},
		{"cyrillic K in secret", jsonReq("PUT", "/v1/secrets/payments/prod/%D0%9AEY", a, `{"value":"v"}`), 400, tokenward.EINVALID},
		{"fullwidth secret", jsonReq("PUT", "/v1/secrets/payments/prod/%EF%BC%ABEY", a, `{"value":"v"}`), 400, tokenward.EINVALID},
		{"zero-width in env", jsonReq("GET", "/v1/secrets/payments/pro%E2%80%8Bd/KEY", a, ""), 400, tokenward.EINVALID},
		{"greek omicron in token name", jsonReq("POST", "/v1/tokens", a, `{"name":"dep\u03bfy","grants":["read:*/*/*"]}`), 400, tokenward.EINVALID},
		{"invalid UTF-8 in name", jsonReq("GET", "/v1/secrets/payments/prod/K%FFY", a, ""), 400, tokenward.EINVALID},
		// JSON shapes.
		{"deep nesting", jsonReq("PUT", put, a, `{"value":`+deep+`}`), 400, tokenward.EINVALID},
		{"deep nesting in unknown field", jsonReq("PUT", put, a, `{"x":`+deep+`}`), 400, tokenward.EINVALID},
		{"deep objects", jsonReq("POST", "/v1/tokens", a, strings.Repeat(`{"a":`, 50_000)+"1"+strings.Repeat("}", 50_000)), 400, tokenward.EINVALID},
		{"duplicate keys of another type", jsonReq("PUT", put, a, `{"value":5,"value":"x"}`), 400, tokenward.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.raw(t, tc.req)
			if resp.StatusCode >= 500 && resp.StatusCode != tc.want {
				t.Fatalf("got %d %s; want %d and never a server error", resp.StatusCode, trunc(body, 200), tc.want)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d %s; want %d", resp.StatusCode, trunc(body, 200), tc.want)
			}
			if tc.code != "" {
				if got := errorCode(body); got != tc.code {
					t.Fatalf("got error code %q in %s; want %q", got, trunc(body, 200), tc.code)
				}
			}
			e.checkLeak(t, body)
		})
	}
	// Nothing above changed a secret.
	for _, p := range []string{"/v1/secrets/payments/prod/KEY", "/v1/secrets/other/prod/KEY"} {
		var s api.SecretResponse
		json.Unmarshal([]byte(e.mustRaw(t, jsonReq("GET", p, a, ""), 200)), &s)
		if s.Version != 1 {
			t.Fatalf("%s: got version %d; want 1 (unchanged)", p, s.Version)
		}
	}
}

// TestAbuseDuplicateKeys: the body decoder (encoding/json) takes the last
// of duplicate keys, as docs/api.md says.
func TestAbuseDuplicateKeys(t *testing.T) {
	e := mustServeAbuse(t, httpapi.Limit{}, httpapi.Limit{})
	body := e.mustRaw(t, jsonReq("PUT", "/v1/secrets/payments/prod/DUP", e.admin, `{"value":"first","value":"last"}`), 200)
	e.checkLeak(t, body)
	var s api.SecretResponse
	json.Unmarshal([]byte(e.mustRaw(t, jsonReq("GET", "/v1/secrets/payments/prod/DUP", e.admin, ""), 200)), &s)
	if s.Value != "last" {
		t.Fatalf("got %q; want %q (the last duplicate key wins)", s.Value, "last")
	}
}

// TestAbuseSlowClient: a client that sends its headers a line at a time,
// never finishing, is cut off by the server's ReadHeaderTimeout and never
// served.
func TestAbuseSlowClient(t *testing.T) {
	e := mustServeAbuse(t, httpapi.Limit{}, httpapi.Limit{})
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang fails the test, it is not asserted on
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		answer <- string(b)
	}()
	io.WriteString(conn, "GET /v1/secrets/payments/prod/KEY HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "+e.admin+"\r\n")
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case got := <-answer:
			// The server closed the connection. Go's server closes a
			// connection whose headers time out without an answer, or
			// with a 408.
			if got != "" && !strings.HasPrefix(got, "HTTP/1.1 408") {
				t.Fatalf("got %q; want the connection closed (or 408)", trunc(got, 200))
			}
			e.checkLeak(t, got)
			return
		case <-tick.C:
			if i > 600 {
				t.Fatal("the server still reads a client that dribbles its headers; want it cut off by ReadHeaderTimeout")
			}
			io.WriteString(conn, "X-Dribble: 1\r\n")
		}
	}
}

// TestAbuseTokenRateLimit: very many requests from one token are answered
// 429 with Retry-After and the API's error body, audited as denied with
// the token named; other tokens keep their own budget; the bucket refills
// with time.
func TestAbuseTokenRateLimit(t *testing.T) {
	e := mustServeAbuse(t, httpapi.Limit{Rate: 2, Burst: 5}, httpapi.Limit{})
	_, other := mustAbuseToken(t, e, "other")
	get := jsonReq("GET", "/v1/secrets/payments/prod/KEY", e.admin, "")
	e.clock.Add(time.Minute) // the set-up's requests are forgotten
	for i := range 5 {
		if resp, body := e.raw(t, get); resp.StatusCode != 200 {
			t.Fatalf("request %d: got %d %s; want 200 within the burst", i+1, resp.StatusCode, body)
		}
	}
	for _, tc := range []struct {
		name string
		req  string
	}{
		{"read", get},
		{"write", jsonReq("PUT", "/v1/secrets/payments/prod/KEY", e.admin, `{"value":"new-`+e.canary+`"}`)},
		{"vault route", "GET /v1/payments/data/prod/KEY HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Vault-Token: " + e.admin + "\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.raw(t, tc.req)
			if resp.StatusCode != 429 {
				t.Fatalf("got %d %s; want 429", resp.StatusCode, trunc(body, 200))
			}
			if got := resp.Header.Get("Retry-After"); got != "1" {
				t.Fatalf("got Retry-After %q; want \"1\" (0.5 s rounded up)", got)
			}
			if !strings.Contains(body, "too many requests") {
				t.Fatalf("got %s; want an error saying too many requests", body)
			}
			e.checkLeak(t, body, other)
		})
	}
	if code := errorCode(e.mustRaw(t, get, 429)); code != tokenward.ERATELIMITED {
		t.Fatalf("got error code %q; want %q", code, tokenward.ERATELIMITED)
	}
	// Another token has its own bucket.
	e.mustRaw(t, jsonReq("GET", "/v1/tokens/self", other, ""), 200)
	// Audited as denied, naming the token.
	e.mu.Lock()
	var limited []tokenward.AuditEntry
	for _, x := range e.entries {
		if x.Status == 429 {
			limited = append(limited, x)
		}
	}
	e.mu.Unlock()
	if len(limited) != 4 {
		t.Fatalf("got %d audit entries with status 429; want 4", len(limited))
	}
	for _, x := range limited {
		if x.Outcome != tokenward.OutcomeDenied || x.TokenID == "" || x.TokenName == "" {
			t.Fatalf("got entry %+v; want outcome denied naming the token", x)
		}
	}
	// The write was refused: the secret is as it was.
	e.clock.Add(3 * time.Second)
	var s api.SecretResponse
	json.Unmarshal([]byte(e.mustRaw(t, get, 200)), &s)
	if s.Version != 1 {
		t.Fatalf("got version %d; want 1 (the limited write not done)", s.Version)
	}
	e.checkAuditClean(t, other)
}

func mustAbuseToken(tb testing.TB, e *abuseEnv, name string) (id, secret string) {
	tb.Helper()
	body := e.mustRaw(tb, jsonReq("POST", "/v1/tokens", e.admin, `{"name":"`+name+`","grants":["read:*/*/*"]}`), 201)
	var resp api.CreateTokenResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		tb.Fatal(err)
	}
	return resp.Token.ID, resp.Secret
}

func (e *abuseEnv) lastEntry(tb testing.TB) tokenward.AuditEntry {
	tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.entries) == 0 {
		tb.Fatal("no audit entries")
	}
	return e.entries[len(e.entries)-1]
}

// checkAuditClean fails when an audit entry holds a secret value or token.
func (e *abuseEnv) checkAuditClean(tb testing.TB, tokens ...string) {
	tb.Helper()
	e.mu.Lock()
	b, err := json.Marshal(e.entries)
	e.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	e.checkLeak(tb, string(b), tokens...)
}

// TestAbuseBruteForce: guessing token values from one address is refused
// (401), then rate-limited (429 with Retry-After) before any guess is
// looked up — a valid token from that address too, until the bucket
// refills — and every attempt is audited as denied with the address and
// never the guess. X-Forwarded-For from a peer that is not a trusted proxy
// does not get a guesser a fresh budget. The lookup itself is by the
// token's SHA-256 (core.Authenticate), never a byte compare of the token.
func TestAbuseBruteForce(t *testing.T) {
	e := mustServeAbuse(t, httpapi.Limit{}, httpapi.Limit{Rate: 1, Burst: 3})
	var guesses []string
	for range 6 {
		g, err := tokenward.NewTokenSecret(tokenward.TokenAdmin)
		if err != nil {
			t.Fatal(err)
		}
		guesses = append(guesses, g)
	}
	// A mistyped admin token (checksum off) is a guess as well.
	last := "a"
	if strings.HasSuffix(e.admin, "a") {
		last = "b"
	}
	guesses = append(guesses, e.admin[:len(e.admin)-1]+last)
	e.clock.Add(time.Minute)
	// A revoked token (a stale CI setting) is no guess: used far past the
	// limit, it stays 401 and spends nothing (a NAT's other clients are
	// not locked out).
	var created struct {
		Token  struct{ ID string } `json:"token"`
		Secret string              `json:"secret"`
	}
	body := e.mustRaw(t, jsonReq("POST", "/v1/tokens", e.admin, `{"name":"stale","grants":["read:payments/prod/*"]}`), 201)
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	e.mustRaw(t, jsonReq("POST", "/v1/tokens/"+created.Token.ID+"/revoke", e.admin, ""), 200)
	for range 10 {
		e.mustRaw(t, jsonReq("GET", "/v1/secrets/payments/prod/KEY", created.Secret, ""), 401)
	}
	get := func(token, xff string) string {
		r := jsonReq("GET", "/v1/secrets/payments/prod/KEY", token, "")
		if xff != "" {
			r = strings.Replace(r, "\r\n\r\n", "\r\nX-Forwarded-For: "+xff+"\r\n\r\n", 1)
		}
		return r
	}
	for _, tc := range []struct {
		name, token, xff string
		want             int
	}{
		{"guess 1", guesses[0], "", 401},
		{"guess 2", guesses[1], "", 401},
		{"guess 3", guesses[6], "", 401},
		{"guess 4: over the limit", guesses[2], "", 429},
		{"spoofed X-Forwarded-For", guesses[3], "203.0.113.9", 429},
		{"the valid token from that address", e.admin, "", 429},
		{"no token at all is not a guess", "", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.raw(t, get(tc.token, tc.xff))
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d %s; want %d", resp.StatusCode, trunc(body, 200), tc.want)
			}
			if tc.want == 429 {
				if got := resp.Header.Get("Retry-After"); got != "1" {
					t.Fatalf("got Retry-After %q; want \"1\"", got)
				}
				if code := errorCode(body); code != tokenward.ERATELIMITED {
					t.Fatalf("got error code %q; want %q", code, tokenward.ERATELIMITED)
				}
			}
			e.checkLeak(t, body, guesses...)
			en := e.lastEntry(t)
			if en.Outcome != tokenward.OutcomeDenied || en.Status != tc.want || en.SourceIP != "127.0.0.1" {
				t.Fatalf("got audit entry %+v; want denied, status %d, source 127.0.0.1", en, tc.want)
			}
		})
	}
	// The bucket refills: the valid token is served, a guess is 401 again.
	e.clock.Add(2 * time.Second)
	e.mustRaw(t, get(e.admin, ""), 200)
	e.mustRaw(t, get(guesses[4], ""), 401)
	e.checkAuditClean(t, guesses...)
}
