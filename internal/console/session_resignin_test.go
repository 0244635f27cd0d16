package console

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

// storedSession reports whether the store still holds the session of
// cookie.
func (e *env) storedSession(t *testing.T, cookie *http.Cookie) bool {
	t.Helper()
	id, err := base64.RawURLEncoding.DecodeString(cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.db.ConsoleSession(t.Context(), sha256.Sum256(id))
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestSignInAgainEndsPresentedSession: signing in from a browser that
// already holds a session ends that session in the store, so a copy of the
// old cookie stops working at once, whichever token signs in; the new
// session has a fresh id. Other sessions of the same token (other
// browsers) are left alone.
func TestSignInAgainEndsPresentedSession(t *testing.T) {
	e := mustEnv(t)
	other, _ := e.mustToken(t, "other", "read:payments/*/*")
	for _, tc := range []struct{ name, again string }{
		{"same token", e.admin},
		{"another token", other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			elsewhere := e.signIn(t, e.admin) // another browser of the same token
			old := e.signIn(t, e.admin)
			fresh := e.signInWith(t, old, tc.again)
			if fresh.Value == old.Value {
				t.Fatalf("signing in again kept the session id")
			}
			if e.storedSession(t, old) {
				t.Errorf("signing in again left the presented session in the store")
			}
			if r := e.do(t, "GET", Prefix+"/", old, nil); r.status != http.StatusUnauthorized {
				t.Errorf("the old cookie after signing in again: got %d; want 401", r.status)
			}
			if r := e.do(t, "GET", Prefix+"/", fresh, nil); r.status != http.StatusOK {
				t.Errorf("the new cookie: got %d; want 200", r.status)
			}
			if r := e.do(t, "GET", Prefix+"/", elsewhere, nil); r.status != http.StatusOK {
				t.Errorf("another session of the same token: got %d; want 200 (left alone)", r.status)
			}
		})
	}
}

// TestSignOutEndsOnlyThisSession: signing out removes the session's row;
// other sessions of the same token go on.
func TestSignOutEndsOnlyThisSession(t *testing.T) {
	e := mustEnv(t)
	elsewhere := e.signIn(t, e.admin)
	ck := e.signIn(t, e.admin)
	page := e.do(t, "GET", Prefix+"/", ck, nil)
	if r := e.do(t, "POST", Prefix+"/signout", ck, url.Values{"csrf": {csrfOf(t, page.body)}}); r.status != http.StatusSeeOther {
		t.Fatalf("sign out: got %d; want 303", r.status)
	}
	if e.storedSession(t, ck) {
		t.Errorf("sign out left the session in the store")
	}
	if !e.storedSession(t, elsewhere) {
		t.Errorf("sign out ended another session of the same token")
	}
}

var alertText = regexp.MustCompile(`(?s)<p class="error" role="alert">(.*?)</p>`)

// TestFilterErrorDoesNotEchoTheLink: a bad audit filter is named, not
// repeated: a crafted link (kept through sign-in by next=) could otherwise
// put its own words into the console's error message, as the API's
// messages for bad query parameters do not.
func TestFilterErrorDoesNotEchoTheLink(t *testing.T) {
	const injected = "Session-expired:paste-your-token-at-evil.example"
	for _, q := range []string{
		"Your-token-leaked,visit-evil.example",
		injected,
		"action:a " + injected,
	} {
		_, err := parseFilter(q, auditKeys)
		if err == nil {
			t.Fatalf("parseFilter(%q): no error", q)
		}
		for _, word := range []string{"evil.example", "Session-expired", "Your-token"} {
			if strings.Contains(err.Error(), word) {
				t.Errorf("parseFilter(%q): the error %q repeats the filter's text", q, err)
				break
			}
		}
	}

	e := mustEnv(t)
	ck := e.signIn(t, e.admin)
	r := e.do(t, "GET", Prefix+"/audit?"+url.Values{"q": {injected}}.Encode(), ck, nil)
	m := alertText.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("the audit page shows no filter error: got %d\n%s", r.status, r.body)
	}
	if got := html.UnescapeString(m[1]); strings.Contains(got, "evil.example") || strings.Contains(got, "Session-expired") {
		t.Errorf("the filter error repeats the link's text: %q", got)
	}
}
