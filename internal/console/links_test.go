package console

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/httpapi"
)

// TestConfirmNamesOnlyAnAnomalyID: the revoke confirmation names the anomaly
// from ?anomaly= only when it is an anomaly id. Any other text was copied
// into the question above the irreversible button, so a crafted link (kept
// through sign-in by next=) could put its own words there ("this is a
// false alarm; click to dismiss it").
func TestConfirmNamesOnlyAnAnomalyID(t *testing.T) {
	e := mustEnv(t)
	_, id := e.mustToken(t, "victim", "read:payments/*/*")
	ck := e.signIn(t, e.admin)
	const injected = "is a false alarm and safe to dismiss"
	for _, tc := range []struct {
		name, anomaly string
		want, never   []string
	}{
		{"none", "", nil, []string{"Suspend the token of anomaly"}},
		{"an anomaly id", "anm_0123456789abcdef", []string{"Suspend the token of anomaly anm_0123456789abcdef: Revoke token"}, nil},
		{"free text", "X " + injected + ". Click the button", nil, []string{injected, "Suspend the token of anomaly"}},
		{"almost an id", "anm_0123456789abcdef " + injected, nil, []string{injected}},
		{"markup", "anm_<b>x</b>", nil, []string{"&lt;b&gt;", "<b>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := Prefix + "/tokens/" + id + "/revoke"
			if tc.anomaly != "" {
				target += "?" + url.Values{"anomaly": {tc.anomaly}}.Encode()
			}
			r := e.do(t, "GET", target, ck, nil)
			if r.status != http.StatusOK || !strings.Contains(r.body, "cannot be undone") {
				t.Fatalf("confirmation: got %d\n%s", r.status, r.body)
			}
			body := html.UnescapeString(r.body)
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("the confirmation lacks %q", w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(r.body, n) || strings.Contains(body, n) {
					t.Errorf("the confirmation holds the link's text %q", n)
				}
			}
		})
	}
}

// TestLinksDropOneShotParams: links built from the current address
// (pager, Older, Verify) do not carry the one-shot parameters: done= (a
// finished action's message, shown again on every page followed) and
// verify=1 (a verification of the whole trail, run again on every Older
// page).
func TestLinksDropOneShotParams(t *testing.T) {
	for _, tc := range []struct {
		target, key, value string
		want               string
	}{
		{"/ui/anomalies?done=acked", "page", "2", "/ui/anomalies?page=2"},
		{"/ui/anomalies?all=1&done=acked&page=1", "page", "2", "/ui/anomalies?all=1&page=2"},
		{"/ui/tokens?done=revoked&q=ci&status=active", "page", "2", "/ui/tokens?page=2&q=ci&status=active"},
		{"/ui/audit?q=action%3Asecret.read&verify=1", "before", "7", "/ui/audit?before=7&q=action%3Asecret.read"},
		{"/ui/audit?before=7&q=x", "verify", "1", "/ui/audit?before=7&q=x&verify=1"},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		if got := withQuery(r, tc.key, tc.value); got != tc.want {
			t.Errorf("withQuery(%s, %s=%s): got %s; want %s", tc.target, tc.key, tc.value, got, tc.want)
		}
	}

	// The audit page end to end: after "Verify the chain now", Older goes
	// to the next page without verifying again.
	e := mustEnv(t, func(e *env, api *httpapi.Server) {
		e.ui.PageSize = 2
		api.AuditLog = &httpapi.AuditLog{Store: e.db}
	})
	chain, err := audit.NewChain(nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		en := &tokenward.AuditEntry{Time: e.clock.Now().Add(-time.Minute), Action: "secret.read", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed}
		if err := chain.Append(en, func(en *tokenward.AuditEntry) error { return e.db.AppendAudit(t.Context(), en) }); err != nil {
			t.Fatal(err)
		}
	}
	ck := e.signIn(t, e.admin)
	r := e.do(t, "GET", Prefix+"/audit?verify=1", ck, nil)
	if r.status != http.StatusOK || strings.Contains(r.body, "Verify the chain now") {
		t.Fatalf("verify: got %d, or no verification on the page\n%s", r.status, r.body)
	}
	m := olderLink.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no Older link\n%s", r.body)
	}
	older := html.UnescapeString(m[1])
	if strings.Contains(older, "verify=") {
		t.Errorf("the Older link verifies the whole trail again: %s", older)
	}
	r = e.do(t, "GET", older, ck, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Verify the chain now") {
		t.Errorf("the Older page (%s): got %d; want the trail without a verification", older, r.status)
	}
}

// browserResolve is where a browser goes for a Location header on base:
// it drops tabs and newlines, reads %2e as a dot in a dot segment (WHATWG
// URL), and resolves the dot segments.
func browserResolve(t *testing.T, base, loc string) *url.URL {
	t.Helper()
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", "%2e", ".", "%2E", ".").Replace(loc)
	b, _ := url.Parse(base)
	u, err := url.Parse(loc)
	if err != nil {
		return nil // not followed
	}
	return b.ResolveReference(u)
}

// TestSignInNextStaysUnderUI: sign-in keeps a next= address only
// when it is a path under /ui/ (docs/console.md). Dot segments — plain,
// percent-encoded, or split by a tab a browser drops — led out of /ui/ to
// any path of the site (/v1/..., /gw/...).
func TestSignInNextStaysUnderUI(t *testing.T) {
	e := mustEnv(t)
	for _, tc := range []struct{ next, want string }{
		{"/ui/tokens?page=2", "/ui/tokens?page=2"},
		{"/ui/projects/payments/prod", "/ui/projects/payments/prod"},
		{"/ui/../v1/tokens", "/ui/"},
		{"/ui/%2e%2e/v1/tokens", "/ui/"},
		{"/ui/%2E%2e/gw/route/x", "/ui/"},
		{"/ui/..\t/v1/tokens", "/ui/"},
		{"/ui/./../v1/tokens", "/ui/"},
		{"/ui/..%2f..%2fv1", "/ui/"},
	} {
		t.Run(tc.next, func(t *testing.T) {
			r := e.do(t, "POST", Prefix+"/signin", nil, url.Values{"token": {e.admin}, "next": {tc.next}})
			if r.status != http.StatusSeeOther {
				t.Fatalf("sign in: got %d", r.status)
			}
			loc := r.header.Get("Location")
			u := browserResolve(t, e.srv.URL+Prefix+"/signin", loc)
			if u == nil || u.Host != strings.TrimPrefix(e.srv.URL, "http://") || !strings.HasPrefix(u.Path, Prefix+"/") {
				t.Errorf("next=%q: Location %q takes a browser to %v, outside %s/", tc.next, loc, u, Prefix)
			}
			if loc != tc.want {
				t.Errorf("next=%q: Location %q; want %q", tc.next, loc, tc.want)
			}
		})
	}
}
