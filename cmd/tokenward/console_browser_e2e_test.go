//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds a Chromium to drive. In CI (CI=true) a missing one
// fails the test; elsewhere it skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI=true: browser tests fail, not skip; .ci/run installs it)")
	}
	t.Skip("chromium is not installed; the browser tests need it")
	return ""
}

// apiJSON makes an API request with token and decodes a JSON answer.
func apiJSON(t *testing.T, addr, token, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return res.StatusCode
}

// seedTokens writes n token records straight into the SQLite file of a
// server that is not running, in one transaction (minting 10,000 through
// the API would take most of the test's time budget). Their hashes are of
// random bytes: nobody holds these tokens.
func seedTokens(t *testing.T, dbPath string, n int, now time.Time) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO tokens (id, hash, name, kind, owner, grants, ci, created_at, expires_at) VALUES (?, ?, ?, 'service', ?, '["read:payments/prod/*"]', '{}', ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		h := sha256.Sum256([]byte(rand.Text()))
		var expires any
		if i%50 == 0 {
			expires = now.Add(time.Duration(i%90+1) * 24 * time.Hour).UnixNano()
		}
		if _, err := stmt.Exec(fmt.Sprintf("tok_seed%06d", i), h[:], fmt.Sprintf("seed-%05d", i), fmt.Sprintf("team-%d", i%7),
			now.Add(-time.Duration(n-i)*time.Minute).UnixNano(), expires); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInBrowser drives the web console in one headless Chromium
// against the real binary on SQLite: sign in, every page (screenshots),
// reveal a value and find the audit entry, revoke a token and see the API
// refuse it and the audit page record it, a cross-origin form post
// refused, no value in any page source but the reveal's, and a 10,000-token
// list paginated.
func TestConsoleInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	const value = "sk_live_browser_VALUE_9Xq2pL"
	e := newRotEnv(t)
	seedTokens(t, filepath.Join(e.dir, "data", "tokenward.db"), 10_000, time.Now())
	e.start()
	if st := apiJSON(t, e.addr, e.token, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev"}}, nil); st != 201 {
		t.Fatalf("create project: %d", st)
	}
	if st := apiJSON(t, e.addr, e.token, "PUT", "/v1/secrets/payments/prod/STRIPE_KEY", map[string]any{"value": value, "owner": "team-payments", "expires_at": time.Now().Add(12 * time.Hour)}, nil); st != 200 {
		t.Fatalf("put secret: %d", st)
	}
	var victim struct {
		Token  struct{ ID string } `json:"token"`
		Secret string              `json:"secret"`
	}
	if st := apiJSON(t, e.addr, e.token, "POST", "/v1/tokens", map[string]any{"name": "deploy-bot", "grants": []string{"read:payments/prod/*"}}, &victim); st != 201 {
		t.Fatalf("create token: %d", st)
	}

	shots, err := os.MkdirTemp("", "tokenward-console-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	// Kept for a person to look at: when the test fails, or runs with -v.
	// Otherwise (make test) every run would leave another 3 MB behind.
	t.Cleanup(func() {
		if !t.Failed() && !testing.Verbose() {
			os.RemoveAll(shots)
		}
	})
	t.Logf("screenshots: %s", shots)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.UserDataDir(t.TempDir()),
		// Chromium's singleton socket directory goes to TMPDIR: in the
		// test's own, or every run leaves one in /tmp.
		chromedp.Env("TMPDIR=" + t.TempDir()),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1366, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	shot := func() []byte {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		return png
	}
	var sources []string // every page's source but the reveal's
	page := func(name, path string) string {
		t.Helper()
		run(name, chromedp.Navigate(e.addr+path), chromedp.WaitVisible(chromedp.CSS("main")))
		src := get(name, chromedp.OuterHTML(chromedp.CSS("html")))
		if err := os.WriteFile(filepath.Join(shots, name+".png"), shot(), 0o600); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, src)
		return src
	}
	screenshot := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(shots, name+".png"), shot(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		return get("text of "+sel, chromedp.Text(chromedp.CSS(sel)))
	}

	// Sign in.
	src := page("01-signin", "/ui/")
	if !strings.Contains(src, `name="token"`) {
		t.Fatal("no sign-in form at /ui/")
	}
	run("sign in", chromedp.SendKeys(chromedp.ID("token"), e.token), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(".cards")))
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.addr + "/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies
	if len(cookies) != 1 || cookies[0].Name != "tokenward_console" || !cookies[0].Secure || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie in Chromium: got %+v; want one Secure, HttpOnly, SameSite=Strict tokenward_console", cookies)
	}

	// Every page. The first Tab reaches the skip link, which moves focus
	// to the content.
	if src := page("02-overview", "/ui/"); !strings.Contains(src, `href="/ui/projects/payments/prod/STRIPE_KEY"`) {
		t.Error("the overview does not list the secret that expires in 12 hours")
	}
	run("tab to the skip link", chromedp.KeyEvent("\t"))
	if got := get("focused", chromedp.Evaluate[string]("document.activeElement.className")); got != "skip" {
		t.Errorf("the first Tab focuses %q; want the skip link", got)
	}
	run("follow the skip link", chromedp.KeyEvent("\r"))
	if got := get("focused", chromedp.Evaluate[string]("document.activeElement.id")); got != "main" {
		t.Errorf("after the skip link, focus is on %q; want main", got)
	}
	page("03-projects", "/ui/projects")
	page("04-project", "/ui/projects/payments")
	page("05-env", "/ui/projects/payments/prod")
	src = page("06-secret", "/ui/projects/payments/prod/STRIPE_KEY")
	if !strings.Contains(src, "Reveal value") {
		t.Fatal("no reveal button on the secret page")
	}
	src = page("07-tokens", "/ui/tokens")
	if want := "Page 1 of 201 (1–50 of 10002)"; !strings.Contains(src, want) {
		t.Errorf("tokens page: lacks %q", want)
	}
	run("next page", chromedp.Click(chromedp.CSS(`a[rel="next"]`)), chromedp.WaitVisible(chromedp.CSS("main")))
	if got := text(".pager span:not([aria-hidden])"); !strings.Contains(got, "Page 2 of 201") {
		t.Errorf("after Next: got %q; want page 2 of 201", got)
	}
	screenshot("08-tokens-page2")
	src = page("09-tokens-filtered", "/ui/tokens?q=seed-0999&status=active")
	if !strings.Contains(src, "10 in all") || !strings.Contains(src, "seed-09990") {
		t.Errorf("filtered tokens page: want the 10 seed-0999x tokens")
	}
	page("10-token", "/ui/tokens/"+victim.Token.ID)
	page("11-bindings", "/ui/bindings")
	// One gateway route of each kind, listed on one page.
	if st := apiJSON(t, e.addr, e.token, "PUT", "/v1/secrets/payments/prod/GH_TOKEN", map[string]any{"value": "ghp_console_gateway_VALUE_1"}, nil); st != 200 {
		t.Fatalf("put GH_TOKEN: %d", st)
	}
	if st := apiJSON(t, e.addr, e.token, "POST", "/v1/gateway/routes", map[string]any{"name": "github", "upstream": "https://api.github.com",
		"secret": "payments/prod/GH_TOKEN", "inject": "header:Authorization=Bearer {{value}}", "allow": []string{"GET /repos/acme/*"}}, nil); st != 201 {
		t.Fatalf("create gateway route: %d", st)
	}
	if st := apiJSON(t, e.addr, e.token, "PUT", "/v1/secrets/payments/prod/DB_URL", map[string]any{"value": "postgres://app:db_console_VALUE_2@db.internal:5432/app"}, nil); st != 200 { // tokenward:allow (a fake test value)
		t.Fatalf("put DB_URL: %d", st)
	}
	if st := apiJSON(t, e.addr, e.token, "POST", "/v1/gateway/db/routes", map[string]any{"name": "pgprod", "upstream": "db.internal:5432", "secret": "payments/prod/DB_URL"}, nil); st != 201 {
		t.Fatalf("create db route: %d", st)
	}
	src = page("12-gateway", "/ui/gateway")
	for _, want := range []string{"github", "https://api.github.com", "GET /repos/acme/*", "pgprod", "db.internal:5432", "payments/prod/DB_URL"} {
		if !strings.Contains(src, want) {
			t.Errorf("gateway page: lacks %q", want)
		}
	}
	for _, value := range []string{"ghp_console_gateway_VALUE_1", "db_console_VALUE_2"} {
		if strings.Contains(src, value) {
			t.Errorf("gateway page: holds the secret value %q", value)
		}
	}
	page("13-audit", "/ui/audit")

	// Reveal: the value in that answer only, and an audit entry.
	run("reveal", chromedp.Navigate(e.addr+"/ui/projects/payments/prod/STRIPE_KEY"), chromedp.WaitVisible(chromedp.CSS("main")),
		chromedp.Click(chromedp.CSS(`form[action$="/reveal"] button`)), chromedp.WaitVisible(chromedp.ID("secret-value")))
	revealed := get("revealed", chromedp.Text(chromedp.ID("secret-value")))
	if revealed != value {
		t.Fatalf("revealed: got %q; want the value", revealed)
	}
	screenshot("14-revealed")
	run("hide", chromedp.Click(chromedp.ID("hide-value")), chromedp.WaitVisible(chromedp.CSS(`form[action$="/reveal"]`)))
	src = page("15-audit-reveal", "/ui/audit?q=action:secret.read")
	if !strings.Contains(src, "payments/prod/STRIPE_KEY") {
		t.Error("the audit page does not show the reveal's secret.read entry")
	}

	// Revoke with confirmation; the API then refuses the token, and the
	// audit page records the revocation.
	if st := apiJSON(t, e.addr, victim.Secret, "GET", "/v1/tokens/self", nil, nil); st != 200 {
		t.Fatalf("victim before revocation: %d", st)
	}
	page("16-confirm-revoke", "/ui/tokens/"+victim.Token.ID+"/revoke")
	run("revoke", chromedp.Click(chromedp.CSS(`form.confirm button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text(".flash"); !strings.Contains(got, "revoked") {
		t.Errorf("after revoke: flash %q", got)
	}
	screenshot("17-revoked")
	if st := apiJSON(t, e.addr, victim.Secret, "GET", "/v1/tokens/self", nil, nil); st != 401 {
		t.Errorf("the API after revocation in the console: got %d; want 401", st)
	}
	// That refused use of the revoked token is an anomaly: explained, with
	// its evidence, acknowledged from the console.
	deadline := time.Now().Add(10 * time.Second)
	for src = page("12-anomalies", "/ui/anomalies"); !strings.Contains(src, "revoked_token_use"); src = page("12-anomalies", "/ui/anomalies") {
		if time.Now().After(deadline) {
			t.Fatal("no revoked_token_use anomaly on the anomalies page")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(src, "/ui/audit?seq=") || !strings.Contains(src, "Suspend token") {
		t.Error("the anomaly shows no evidence link or no suspend action")
	}
	run("acknowledge", chromedp.Click(chromedp.CSS(`form[action$="/ack"] button`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text(".flash"); !strings.Contains(got, "acknowledged") {
		t.Errorf("after acknowledge: flash %q", got)
	}
	src = page("12b-anomalies-all", "/ui/anomalies?all=1")
	if !strings.Contains(src, "acknowledged 20") {
		t.Error("the acknowledged anomaly is not shown as acknowledged")
	}
	src = page("18-audit-revoke", "/ui/audit?q=action:token.revoke")
	if !strings.Contains(src, "token:"+victim.Token.ID) {
		t.Error("the audit page does not show the token.revoke entry")
	}
	src = page("19-audit-verify", "/ui/audit?verify=1")
	if !strings.Contains(src, "The chain is intact") {
		t.Error("the audit chain does not verify in the console")
	}

	// A form on another loopback origin posting to the console, with the
	// session's real CSRF token even: refused (Sec-Fetch-Site: same-site,
	// Origin: the other port), and the admin token is not revoked.
	csrf := regexpCSRF(t, sources[len(sources)-1])
	var adminID struct{ ID string }
	apiJSON(t, e.addr, e.token, "GET", "/v1/tokens/self", nil, &adminID)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/ui/tokens/%s/revoke"><input name="csrf" value="%s"></form><script>document.getElementById("f").submit()</script>`,
			e.addr, adminID.ID, csrf)
	}))
	defer evil.Close()
	run("cross-origin post", chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS("main")))
	refused := text("main")
	screenshot("20-cross-origin-refused")
	if !strings.Contains(refused, "another site") {
		t.Errorf("cross-origin form post: got %q; want refused", refused)
	}
	if st := apiJSON(t, e.addr, e.token, "GET", "/v1/tokens/self", nil, nil); st != 200 {
		t.Fatalf("the admin token after the cross-origin post: %d; want 200 (not revoked)", st)
	}

	// No page source but the reveal's holds the value or the token.
	for i, s := range sources {
		if strings.Contains(s, value) || strings.Contains(s, e.token) || strings.Contains(s, victim.Secret) {
			t.Errorf("page %d holds a secret value or a token", i)
		}
	}

	// Sign out.
	run("sign out", chromedp.Navigate(e.addr+"/ui/"), chromedp.WaitVisible(chromedp.CSS(".signout")),
		chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.ID("token")))

	// The server's log (at debug level) holds none of them either.
	logs := e.logs.String()
	for what, v := range map[string]string{"value": value, "admin token": e.token, "revoked token": victim.Secret, "session id": cookies[0].Value} {
		if strings.Contains(logs, v) {
			t.Errorf("the server log holds the %s", what)
		}
	}
}

func regexpCSRF(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="csrf" value="`)
	if !ok {
		t.Fatal("no CSRF field in the page")
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
