package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// clock is a settable test clock shared by the engine and the console.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a console over the real API server on a real SQLite store, on
// loopback, with the API's audit hook recording into entries.
type env struct {
	srv     *httptest.Server
	ui      *Console
	db      *sqlite.DB
	dbPath  string
	core    *core.Core
	clock   *clock
	admin   string
	adminID string
	key     []byte

	mu      sync.Mutex
	entries []*tokenward.AuditEntry
	logs    bytes.Buffer // the API's and the console's logs, at debug level
	never   []string     // what must never reach a log: tokens, values, session ids
}

// Write makes env the log sink (under mu: handlers log concurrently).
func (e *env) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.Write(p)
}

// secret notes a string that must never reach a log.
func (e *env) secret(s string) string {
	e.mu.Lock()
	e.never = append(e.never, s)
	e.mu.Unlock()
	return s
}

const secretValue = "sk_live_console_test_value_Zq81"

// mustEnv starts the env; each option may change the API server and the
// console before they serve.
func mustEnv(t *testing.T, options ...func(*env, *httpapi.Server)) *env {
	t.Helper()
	e := &env{dbPath: filepath.Join(t.TempDir(), "tokenward.db"), clock: &clock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}}
	e.db = sqlite.NewDB(e.dbPath)
	if err := e.db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	e.key = seal.NewKey()
	key := e.key
	ctx := context.Background()
	var err error
	if e.admin, err = core.Init(ctx, e.db, key, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if e.core, err = core.New(ctx, e.db, key); err != nil {
		t.Fatal(err)
	}
	e.core.Now = e.clock.Now
	logger := slog.New(slog.NewTextHandler(e, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.secret(e.admin)
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, v := range e.never {
			if strings.Contains(e.logs.String(), v) {
				t.Errorf("a log line holds a token, a value or a session id (%d bytes)", len(v))
			}
		}
	})
	api := httpapi.NewServer(e.core, logger)
	api.Audit = func(_ context.Context, a *tokenward.AuditEntry) error {
		e.mu.Lock()
		e.entries = append(e.entries, a)
		e.mu.Unlock()
		return nil
	}
	e.ui = New(api, e.db, logger)
	e.ui.Now = e.clock.Now
	for _, o := range options {
		o(e, api)
	}
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", e.ui)
	mux.Handle("/", api)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)

	adm := e.mustAuth(t, e.admin)
	e.adminID = adm.ID
	if _, err := e.core.CreateProject(ctx, adm, "payments", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"STRIPE_KEY", "OTHER"} {
		if _, err := e.core.PutSecret(ctx, adm, core.PutSecretInput{Project: "payments", Env: "prod", Name: name, Value: []byte(e.secret(secretValue + name))}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) mustAuth(t *testing.T, token string) *tokenward.Token {
	t.Helper()
	tok, err := e.core.Authenticate(context.Background(), token, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mustToken mints a token with grants and returns it and its id.
func (e *env) mustToken(t *testing.T, name string, grants ...string) (string, string) {
	t.Helper()
	gs, err := tokenward.ParseGrants(grants)
	if err != nil {
		t.Fatal(err)
	}
	tok, secret, err := e.core.CreateToken(context.Background(), e.mustAuth(t, e.admin), core.CreateTokenInput{Name: name, Grants: gs})
	if err != nil {
		t.Fatal(err)
	}
	return e.secret(secret), tok.ID
}

// noRedirect is a client that shows redirects instead of following them;
// it keeps no cookies: each test sends its own.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type resp struct {
	status int
	header http.Header
	body   string
}

// do sends a request; form is sent url-encoded as a POST body.
func (e *env) do(t *testing.T, method, target string, cookie *http.Cookie, form url.Values, header ...string) resp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

// signIn signs in with token and returns the session cookie.
func (e *env) signIn(t *testing.T, token string) *http.Cookie {
	t.Helper()
	return e.signInWith(t, nil, token)
}

// signInWith signs in with token from a browser that presents cookie (nil:
// none) and returns the new session cookie.
func (e *env) signInWith(t *testing.T, cookie *http.Cookie, token string) *http.Cookie {
	t.Helper()
	r := e.do(t, "POST", Prefix+"/signin", cookie, url.Values{"token": {token}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign in: got %d; want 303\n%s", r.status, r.body)
	}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == cookiePlain {
			e.secret(c.Value)
			return c
		}
	}
	t.Fatalf("sign in set no %s cookie: %v", cookiePlain, r.header["Set-Cookie"])
	return nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token of a page.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", page)
	}
	return m[1]
}

func TestSecurityHeaders(t *testing.T) {
	e := mustEnv(t)
	ck := e.signIn(t, e.admin)
	for _, target := range []string{Prefix + "/signin", Prefix + "/", Prefix + "/tokens", Prefix + "/nope", Prefix + "/static/console.css"} {
		r := e.do(t, "GET", target, ck, nil)
		want := map[string]string{
			"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
			"Cache-Control":           "no-store",
		}
		if strings.HasPrefix(target, Prefix+"/static/") {
			want["Cache-Control"] = "public, max-age=3600"
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s: %s: got %q; want %q", target, k, got, v)
			}
		}
		// No inline script or style anywhere: the policy forbids them.
		for _, bad := range []string{"<script>", "style=", "<style", "onclick", "javascript:"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s: the page holds %q, which the policy blocks", target, bad)
			}
		}
	}
}

func TestSignInSessionAndCookie(t *testing.T) {
	e := mustEnv(t)
	ck := e.signIn(t, e.admin)
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("cookie: got Secure=%v HttpOnly=%v SameSite=%v Path=%q Domain=%q; want Secure, HttpOnly, Strict, /, no domain",
			ck.Secure, ck.HttpOnly, ck.SameSite, ck.Path, ck.Domain)
	}
	id, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil || len(id) != 32 {
		t.Fatalf("cookie value: got %d bytes (%v); want 32 random bytes", len(id), err)
	}
	// The store knows the session by the id's hash, with the token sealed.
	rec, err := e.db.ConsoleSession(context.Background(), sha256.Sum256(id))
	if err != nil {
		t.Fatal(err)
	}
	if rec.TokenID != e.adminID || !rec.ExpiresAt.Equal(e.clock.Now().Add(DefaultMaxAge)) {
		t.Errorf("session: got token %s expiring %v; want %s expiring %v", rec.TokenID, rec.ExpiresAt, e.adminID, e.clock.Now().Add(DefaultMaxAge))
	}
	if bytes.Contains(rec.SealedToken, []byte(e.admin)) {
		t.Error("the stored session holds the token in plaintext")
	}
	// Neither the token nor the session id is anywhere in the database
	// files (the WAL included).
	e.db.Close()
	files, _ := filepath.Glob(e.dbPath + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for what, v := range map[string][]byte{"token": []byte(e.admin), "session id": id, "cookie": []byte(ck.Value)} {
			if bytes.Contains(b, v) {
				t.Errorf("%s holds the %s in plaintext", filepath.Base(f), what)
			}
		}
	}
}

func TestCookieNameOverTLS(t *testing.T) {
	for _, tc := range []struct {
		tls, forwarded bool
		want           string
	}{
		{false, false, cookiePlain},
		{true, false, cookieTLS},
		{false, true, cookieTLS},
	} {
		r := httptest.NewRequest("GET", "/ui/", nil)
		if tc.tls {
			r = httptest.NewRequest("GET", "https://tw.example/ui/", nil)
		}
		if tc.forwarded {
			r.Header.Set("X-Forwarded-Proto", "https")
		}
		if got := cookieName(r); got != tc.want {
			t.Errorf("tls=%v forwarded=%v: got %s; want %s", tc.tls, tc.forwarded, got, tc.want)
		}
	}
}

func TestSignInRefused(t *testing.T) {
	e := mustEnv(t)
	wrong := e.admin[:len(e.admin)-4] + "AAAA"
	for _, token := range []string{"", wrong, "twa_notatoken"} {
		r := e.do(t, "POST", Prefix+"/signin", nil, url.Values{"token": {token}})
		if r.status != http.StatusUnauthorized && r.status != http.StatusBadRequest {
			t.Errorf("token %q: got %d; want 401 or 400", token, r.status)
		}
		if len(r.header["Set-Cookie"]) != 0 {
			t.Errorf("token %q: a refused sign-in set a cookie", token)
		}
		if token != "" && strings.Contains(r.body, token) {
			t.Errorf("token %q: the page echoes the token", token)
		}
	}
	// Without a session every page is the sign-in page.
	r := e.do(t, "GET", Prefix+"/tokens", nil, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `name="token"`) {
		t.Errorf("no session: got %d; want 401 with the sign-in form", r.status)
	}
}

func TestCSRF(t *testing.T) {
	e := mustEnv(t)
	ck := e.signIn(t, e.admin)
	page := e.do(t, "GET", Prefix+"/projects/payments/prod/STRIPE_KEY", ck, nil)
	if page.status != 200 {
		t.Fatalf("secret page: got %d\n%s", page.status, page.body)
	}
	if strings.Contains(page.body, secretValue) {
		t.Fatal("the secret page shows the value before a reveal")
	}
	token := csrfOf(t, page.body)
	reveal := Prefix + "/projects/payments/prod/STRIPE_KEY/reveal"
	other, _ := e.mustToken(t, "other-session", "admin:*/*/*")
	otherPage := e.do(t, "GET", Prefix+"/", e.signIn(t, other), nil)
	tests := []struct {
		name   string
		form   url.Values
		header []string
		want   int
	}{
		{"no token", url.Values{}, nil, http.StatusForbidden},
		{"wrong token", url.Values{"csrf": {strings.Repeat("A", len(token))}}, nil, http.StatusForbidden},
		{"another session's token", url.Values{"csrf": {csrfOf(t, otherPage.body)}}, nil, http.StatusForbidden},
		{"another origin", url.Values{"csrf": {token}}, []string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", url.Values{"csrf": {token}}, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"same origin", url.Values{"csrf": {token}}, []string{"Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin"}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.mu.Lock()
			before := len(e.entries)
			e.mu.Unlock()
			r := e.do(t, "POST", reveal, ck, tc.form, tc.header...)
			if r.status != tc.want {
				t.Fatalf("got %d; want %d\n%s", r.status, tc.want, r.body)
			}
			revealed := strings.Contains(r.body, secretValue+"STRIPE_KEY")
			if revealed != (tc.want == http.StatusOK) {
				t.Fatalf("value in the answer: got %v; want %v", revealed, tc.want == http.StatusOK)
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			var reads int
			for _, a := range e.entries[before:] {
				if a.Action == "secret.read" && a.Resource == "payments/prod/STRIPE_KEY" {
					reads++
					if a.TokenID != e.adminID || !strings.HasPrefix(a.UserAgent, "tokenward-console (") || a.SourceIP != "127.0.0.1" {
						t.Errorf("audit entry: got token %s, agent %q, ip %s; want the signed-in token, the console's agent, the browser's address", a.TokenID, a.UserAgent, a.SourceIP)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tc.want == http.StatusOK]; reads != want {
				t.Errorf("secret.read audit entries: got %d; want %d", reads, want)
			}
		})
	}
	// The answer that reveals is not cached.
	r := e.do(t, "POST", reveal, ck, url.Values{"csrf": {token}})
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("reveal Cache-Control: got %q; want no-store", got)
	}
}

func TestRevealNeedsRead(t *testing.T) {
	e := mustEnv(t)
	reader, _ := e.mustToken(t, "reads-other", "read:payments/prod/OTHER")
	ck := e.signIn(t, reader)
	page := e.do(t, "GET", Prefix+"/projects/payments/prod/OTHER", ck, nil)
	token := csrfOf(t, page.body)
	r := e.do(t, "POST", Prefix+"/projects/payments/prod/STRIPE_KEY/reveal", ck, url.Values{"csrf": {token}})
	if r.status == http.StatusOK || strings.Contains(r.body, secretValue+"STRIPE_KEY") {
		t.Fatalf("reveal without the read grant: got %d (value shown: %v); want refused", r.status, strings.Contains(r.body, secretValue))
	}
	r = e.do(t, "POST", Prefix+"/projects/payments/prod/OTHER/reveal", ck, url.Values{"csrf": {token}})
	if r.status != http.StatusOK || !strings.Contains(r.body, secretValue+"OTHER") {
		t.Fatalf("reveal with the read grant: got %d; want 200 with the value", r.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []time.Duration // clock moves, each followed by a page view
		alive []bool          // whether the session survives each view
	}{
		{"idle", []time.Duration{29 * time.Minute, 29 * time.Minute, 30 * time.Minute}, []bool{true, true, false}},
		{"absolute", []time.Duration{6 * time.Hour, 0, 0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEnv(t)
			ck := e.signIn(t, e.admin)
			if tc.name == "absolute" {
				// Used every 20 minutes, it still ends after MaxAge.
				views := 0
				for d := time.Duration(0); d < DefaultMaxAge; d += 20 * time.Minute {
					e.clock.Add(20 * time.Minute)
					r := e.do(t, "GET", Prefix+"/tokens", ck, nil)
					views++
					if alive := r.status == http.StatusOK; alive != (d+20*time.Minute < DefaultMaxAge) {
						t.Fatalf("after %v: got status %d", d+20*time.Minute, r.status)
					}
				}
				return
			}
			for i, d := range tc.steps {
				e.clock.Add(d)
				r := e.do(t, "GET", Prefix+"/tokens", ck, nil)
				if alive := r.status == http.StatusOK; alive != tc.alive[i] {
					t.Fatalf("step %d (+%v): got status %d; want alive=%v", i, d, r.status, tc.alive[i])
				}
				if !tc.alive[i] && !strings.Contains(r.body, "expired") {
					t.Errorf("step %d: the sign-in page does not say the session expired", i)
				}
			}
			id, _ := base64.RawURLEncoding.DecodeString(ck.Value)
			if _, err := e.db.ConsoleSession(context.Background(), sha256.Sum256(id)); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
				t.Errorf("expired session in the store: got %v; want ENOTFOUND", err)
			}
		})
	}
}

func TestRevokedTokenEndsSessions(t *testing.T) {
	e := mustEnv(t)
	tok, id := e.mustToken(t, "to-revoke", "admin:*/*/*")
	first, second := e.signIn(t, tok), e.signIn(t, tok)
	if r := e.do(t, "GET", Prefix+"/tokens", first, nil); r.status != http.StatusOK {
		t.Fatalf("before revocation: got %d", r.status)
	}
	if _, err := e.core.RevokeToken(context.Background(), e.mustAuth(t, e.admin), id); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, "GET", Prefix+"/tokens", first, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "no longer valid") {
		t.Fatalf("after revocation: got %d; want 401 with the sign-in page saying why\n%s", r.status, r.body)
	}
	// Every session of the token ended, not only the one that asked.
	if n, err := e.db.DeleteTokenConsoleSessions(context.Background(), id); err != nil || n != 0 {
		t.Errorf("sessions left of the revoked token: got %d (%v); want 0", n, err)
	}
	if r := e.do(t, "GET", Prefix+"/", second, nil); r.status != http.StatusUnauthorized {
		t.Errorf("the other session after revocation: got %d; want 401", r.status)
	}
}

func TestRevokeThroughConsole(t *testing.T) {
	e := mustEnv(t)
	victim, id := e.mustToken(t, "victim", "read:payments/*/*")
	victimSession := e.signIn(t, victim)
	ck := e.signIn(t, e.admin)
	confirm := e.do(t, "GET", Prefix+"/tokens/"+id+"/revoke", ck, nil)
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, "cannot be undone") {
		t.Fatalf("confirmation: got %d", confirm.status)
	}
	r := e.do(t, "POST", Prefix+"/tokens/"+id+"/revoke", ck, url.Values{"csrf": {csrfOf(t, confirm.body)}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != Prefix+"/tokens/"+id+"?done=revoked" {
		t.Fatalf("revoke: got %d to %q", r.status, r.header.Get("Location"))
	}
	if _, err := e.core.Authenticate(context.Background(), victim, "127.0.0.1"); tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED {
		t.Errorf("the API after revocation: got %v; want EUNAUTHORIZED", err)
	}
	if r := e.do(t, "GET", Prefix+"/", victimSession, nil); r.status != http.StatusUnauthorized {
		t.Errorf("the revoked token's session: got %d; want 401", r.status)
	}
	// A token that may not revoke is refused by the API's grants.
	reader, rid := e.mustToken(t, "reader", "read:payments/*/*")
	rck := e.signIn(t, reader)
	page := e.do(t, "GET", Prefix+"/projects/payments/prod/OTHER", rck, nil)
	r = e.do(t, "POST", Prefix+"/tokens/"+e.adminID+"/revoke", rck, url.Values{"csrf": {csrfOf(t, page.body)}})
	if r.status != http.StatusForbidden {
		t.Errorf("revoke without the grant: got %d; want 403", r.status)
	}
	if _, err := e.core.Authenticate(context.Background(), e.admin, "127.0.0.1"); err != nil {
		t.Errorf("the admin token after a refused revoke: %v", err)
	}
	_ = rid
}

func TestSignOut(t *testing.T) {
	e := mustEnv(t)
	ck := e.signIn(t, e.admin)
	page := e.do(t, "GET", Prefix+"/", ck, nil)
	r := e.do(t, "POST", Prefix+"/signout", ck, url.Values{"csrf": {csrfOf(t, page.body)}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign out: got %d", r.status)
	}
	if !strings.Contains(strings.Join(r.header["Set-Cookie"], "\n"), "Max-Age=0") {
		t.Errorf("sign out did not clear the cookie: %v", r.header["Set-Cookie"])
	}
	if r := e.do(t, "GET", Prefix+"/", ck, nil); r.status != http.StatusUnauthorized {
		t.Errorf("after sign out: got %d; want 401", r.status)
	}
}

func TestPagesAndPagination(t *testing.T) {
	e := mustEnv(t)
	for i := range 120 {
		e.mustToken(t, "bulk-"+strings.Repeat("x", i%3)+time.Duration(i).String(), "read:payments/prod/*")
	}
	ck := e.signIn(t, e.admin)
	for _, tc := range []struct {
		target string
		want   []string
	}{
		{Prefix + "/", []string{"Expirations, next 90 days", "<svg", "active tokens"}},
		{Prefix + "/projects", []string{`href="/ui/projects/payments/prod"`}},
		{Prefix + "/projects/payments/prod", []string{"STRIPE_KEY", "OTHER"}},
		{Prefix + "/tokens", []string{"Page 1 of 3 (1–50 of 121)"}},
		{Prefix + "/tokens?page=3", []string{"Page 3 of 3 (101–121 of 121)"}},
		{Prefix + "/tokens?q=bulk-xx&status=active", []string{"40 in all", "bulk-xx2ns"}},
		{Prefix + "/tokens?status=revoked", []string{"No tokens match."}},
		// This server runs without the OIDC, audit and monitoring
		// features: their pages say so (the browser test has them all).
		{Prefix + "/bindings", []string{"not enabled on this server"}},
		{Prefix + "/gateway", []string{"Gateway routes", "No gateway routes you may see.", "not enabled on this server."}},
		{Prefix + "/audit?q=bogus", []string{"is not key:value"}},
		{Prefix + "/anomalies", []string{"monitoring is not enabled"}},
	} {
		r := e.do(t, "GET", tc.target, ck, nil)
		if r.status != http.StatusOK && r.status != http.StatusServiceUnavailable {
			t.Errorf("%s: got %d; want 200\n%s", tc.target, r.status, r.body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.body, w) {
				t.Errorf("%s: the page lacks %q\n%s", tc.target, w, r.body[strings.Index(r.body, "<main"):])
			}
		}
		if strings.Contains(r.body, secretValue) {
			t.Errorf("%s: the page holds a secret value", tc.target)
		}
		if strings.Contains(r.body, e.admin) {
			t.Errorf("%s: the page holds the token", tc.target)
		}
	}
}

var (
	auditRowSeq = regexp.MustCompile(`<tr id="seq-(\d+)">`)
	olderLink   = regexp.MustCompile(`<a href="([^"]+)" rel="next">Older`)
)

// TestAuditOlder follows the audit page's Older links through entries of
// which several share one time (as on a coarse clock) across
// page boundaries: every entry is shown once, newest first. Paging by time
// (until= the last entry's time) skipped those left off a page.
func TestAuditOlder(t *testing.T) {
	e := mustEnv(t, func(e *env, api *httpapi.Server) {
		e.ui.PageSize = 4
		api.AuditLog = &httpapi.AuditLog{Store: e.db}
	})
	// The trail: 1 and 2 a minute before at, 3 to 10 at at, 11 a minute
	// after; odd seqs are reads.
	at := e.clock.Now()
	chain, err := audit.NewChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= 11; seq++ {
		en := &tokenward.AuditEntry{Time: at, Action: "secret.write", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed}
		switch {
		case seq <= 2:
			en.Time = at.Add(-time.Minute)
		case seq == 11:
			en.Time = at.Add(time.Minute)
		}
		if seq%2 == 1 {
			en.Action = "secret.read"
		}
		if err := chain.Append(en, func(en *tokenward.AuditEntry) error { return e.db.AppendAudit(t.Context(), en) }); err != nil {
			t.Fatal(err)
		}
	}
	stamp := func(d time.Duration) string { return at.Add(d).Format(time.RFC3339Nano) }
	filtered := func(q string) string { return "?" + url.Values{"q": {q}}.Encode() }
	ck := e.signIn(t, e.admin)
	for _, tc := range []struct {
		name, query string
		want        []int
	}{
		{"all", "", []int{11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"filtered by action", filtered("action:secret.read"), []int{11, 9, 7, 5, 3, 1}},
		{"filtered since", filtered("since:" + stamp(0)), []int{11, 10, 9, 8, 7, 6, 5, 4, 3}},
		{"filtered until", filtered("until:" + stamp(time.Minute)), []int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		// An Older link from before the seq cursor still pages on.
		{"an until= link", "?until=" + url.QueryEscape(stamp(time.Minute)), []int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			target := Prefix + "/audit" + tc.query
			for page := 0; target != ""; page++ {
				if page > len(tc.want) {
					t.Fatalf("still an Older link after %d pages; seen %v", page, got)
				}
				r := e.do(t, "GET", target, ck, nil)
				if r.status != http.StatusOK {
					t.Fatalf("%s: got %d; want 200\n%s", target, r.status, r.body)
				}
				for _, m := range auditRowSeq.FindAllStringSubmatch(r.body, -1) {
					seq, _ := strconv.Atoi(m[1])
					got = append(got, seq)
				}
				if page > 0 && !strings.Contains(r.body, "← Newest") {
					t.Errorf("%s: page %d has no Newest link", target, page+1)
				}
				target = ""
				if m := olderLink.FindStringSubmatch(r.body); m != nil {
					target = html.UnescapeString(m[1])
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("seqs shown following Older: got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/ui/tokens?page=2", "/ui/tokens?page=2"},
		{"", "/ui/"},
		{"https://evil.example/ui/", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/ui/\\evil", "/ui/"},
		{"/v1/tokens", "/ui/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestVersionLabels(t *testing.T) {
	for _, tc := range []struct {
		name      string
		current   int
		rotations []*rotate.Rotation // newest first, as the API lists them
		want      map[int]string
	}{
		{"no rotation", 3, nil, map[int]string{3: "CURRENT"}},
		{"pending", 3, []*rotate.Rotation{{Step: rotate.StepTest, CurrentVersion: 3, PendingVersion: 4}}, map[int]string{3: "CURRENT", 4: "PENDING"}},
		{"in grace", 4, []*rotate.Rotation{{Step: rotate.StepRevoke, CurrentVersion: 3, PendingVersion: 4}}, map[int]string{3: "PREVIOUS", 4: "CURRENT"}},
		{"done, then failed", 4, []*rotate.Rotation{
			{Step: rotate.StepFailed, CurrentVersion: 4, PendingVersion: 5},
			{Step: rotate.StepDone, CurrentVersion: 3, PendingVersion: 4},
		}, map[int]string{4: "CURRENT"}},
		{"a new rotation while the last is in grace", 4, []*rotate.Rotation{
			{Step: rotate.StepCreate, CurrentVersion: 4, PendingVersion: 5},
			{Step: rotate.StepRevoke, CurrentVersion: 3, PendingVersion: 4},
		}, map[int]string{3: "PREVIOUS", 4: "CURRENT", 5: "PENDING"}},
	} {
		if got := versionLabels(tc.current, tc.rotations); !maps.Equal(got, tc.want) {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
}

// TestSessionsSharedAcrossServers: two servers (engines, API servers and
// consoles of their own) on one database act as one — a session made on
// one is good on the other, and ended on one it is ended on both.
func TestSessionsSharedAcrossServers(t *testing.T) {
	a := mustEnv(t)
	c2, err := core.New(context.Background(), a.db, a.key)
	if err != nil {
		t.Fatal(err)
	}
	c2.Now = a.clock.Now
	ui2 := New(httpapi.NewServer(c2, nil), a.db, nil)
	ui2.Now = a.clock.Now
	b := &env{srv: httptest.NewServer(ui2)}
	t.Cleanup(b.srv.Close)

	ck := a.signIn(t, a.admin)
	page := b.do(t, "GET", Prefix+"/tokens", ck, nil)
	if page.status != http.StatusOK {
		t.Fatalf("a session made on server A, used on server B: got %d; want 200", page.status)
	}
	if r := b.do(t, "POST", Prefix+"/signout", ck, url.Values{"csrf": {csrfOf(t, page.body)}}); r.status != http.StatusSeeOther {
		t.Fatalf("sign out on B: got %d", r.status)
	}
	if r := a.do(t, "GET", Prefix+"/tokens", ck, nil); r.status != http.StatusUnauthorized {
		t.Errorf("after signing out on B, the session on A: got %d; want 401", r.status)
	}
}
