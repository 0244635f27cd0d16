package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/seal"
)

// Cookie names: the __Host- prefix (Secure, Path=/, no Domain: the cookie
// cannot be set or shadowed by a sibling host or a plain-HTTP page) when
// the console is reached over TLS, and a plain name on plain HTTP, where a
// browser accepts a Secure cookie only from a loopback address
// (http://127.0.0.1, http://localhost count as secure contexts) and
// refuses the __Host- prefix. The cookie is Secure either way.
const (
	cookieTLS   = "__Host-tokenward_console"
	cookiePlain = "tokenward_console"
)

// touchEvery bounds how often a session's last use is written: the idle
// expiry is exact to this.
const touchEvery = time.Minute

// session is a signed-in request's session.
type session struct {
	id    []byte   // the cookie's 32 random bytes
	hash  [32]byte // what the store knows it by
	token string   // the signed-in token, opened with a key derived from id
	rec   *tokenward.ConsoleSession
	csrf  string
}

func cookieName(r *http.Request) string {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return cookieTLS
	}
	return cookiePlain
}

// derive returns a key for purpose from a session id.
func derive(id []byte, purpose string) []byte {
	m := hmac.New(sha256.New, id)
	m.Write([]byte("tokenward console " + purpose))
	return m.Sum(nil)
}

func newSession(id []byte) *session {
	return &session{id: id, hash: sha256.Sum256(id), csrf: base64.RawURLEncoding.EncodeToString(derive(id, "csrf"))}
}

// checkCSRF compares a form's CSRF token with the session's in constant
// time.
func (s *session) checkCSRF(r *http.Request) bool {
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrf))
}

// start stores a new session for token (already checked by the API) and
// sets its cookie.
func (c *Console) start(ctx context.Context, w http.ResponseWriter, r *http.Request, token, tokenID string) error {
	id := make([]byte, 32)
	rand.Read(id)
	s := newSession(id)
	sealed, err := seal.SealBytes(derive(id, "token"), []byte(token), s.hash[:])
	if err != nil {
		return err
	}
	now := c.Now()
	if _, err := c.Sessions.SweepConsoleSessions(ctx, now, now.Add(-c.IdleTimeout)); err != nil {
		return err
	}
	if err := c.Sessions.CreateConsoleSession(ctx, s.hash, &tokenward.ConsoleSession{
		TokenID: tokenID, SealedToken: sealed, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(c.MaxAge),
	}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r), Value: base64.RawURLEncoding.EncodeToString(id), Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(c.MaxAge / time.Second),
	})
	return nil
}

// errNoSession is why a request has no session: shown on the sign-in page.
type errNoSession string

func (e errNoSession) Error() string { return string(e) }

// load returns the request's session: its cookie's id, found by hash in the
// store, within both expiries, its token opened.
func (c *Console) load(r *http.Request) (*session, error) {
	ck, err := r.Cookie(cookieName(r))
	if err != nil {
		return nil, errNoSession("")
	}
	id, ok := cookieID(ck.Value)
	if !ok {
		return nil, errNoSession("")
	}
	s := newSession(id)
	rec, err := c.Sessions.ConsoleSession(r.Context(), s.hash)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return nil, errNoSession("Your session has ended. Sign in again.")
	}
	if err != nil {
		return nil, err
	}
	now := c.Now()
	if !now.Before(rec.ExpiresAt) || now.Sub(rec.LastSeenAt) >= c.IdleTimeout {
		c.Sessions.DeleteConsoleSession(r.Context(), s.hash)
		return nil, errNoSession("Your session has expired. Sign in again.")
	}
	tok, err := seal.OpenBytes(derive(id, "token"), rec.SealedToken, s.hash[:])
	if err != nil {
		c.Sessions.DeleteConsoleSession(r.Context(), s.hash)
		return nil, errNoSession("Your session has ended. Sign in again.")
	}
	s.token, s.rec = string(tok), rec
	if now.Sub(rec.LastSeenAt) >= touchEvery {
		if err := c.Sessions.TouchConsoleSession(r.Context(), s.hash, now); err != nil && tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
			return nil, err
		}
	}
	return s, nil
}

// cookieID is the session id a cookie value carries, if it can be one.
func cookieID(value string) ([]byte, bool) {
	id, err := base64.RawURLEncoding.DecodeString(value)
	return id, err == nil && len(id) == 32
}

// endPresented removes from the store every session the browser presented
// a cookie for (under either name: it may hold both), so that signing in
// again leaves no copy of an old cookie working. Other sessions of the
// same token, in other browsers, go on.
func (c *Console) endPresented(ctx context.Context, r *http.Request) error {
	for _, ck := range r.Cookies() {
		if ck.Name != cookieTLS && ck.Name != cookiePlain {
			continue
		}
		id, ok := cookieID(ck.Value)
		if !ok {
			continue // never a session
		}
		if err := c.Sessions.DeleteConsoleSession(ctx, sha256.Sum256(id)); err != nil {
			return err
		}
	}
	return nil
}

// end removes a session and clears its cookie.
func (c *Console) end(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.Sessions.DeleteConsoleSession(context.WithoutCancel(r.Context()), s.hash); err != nil {
		c.Logger.Error("ending a console session", "err", err)
	}
	clearCookie(w, r)
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}
