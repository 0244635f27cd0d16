package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// apiError is an answer of the API that is not a success: its status and
// the API's message (never a value or a token: the API's messages hold
// neither).
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code) }

// errSessionEnded is returned when the API no longer takes the session's
// token (revoked, suspended, expired): the session ends.
var errSessionEnded = errNoSession("Your token is no longer valid (revoked, suspended or expired). Sign in with another token.")

// recorder is the response of an in-process API request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// path joins escaped path segments under /v1.
func path(segments ...string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// call makes one API request with token, as the browser's request from
// (its address, forwarded-for and user agent, so that the audit entry and
// the rate limits see the browser), and decodes the answer into out.
func (c *Console) call(from *http.Request, token, method, target string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(from.Context(), method, target, rd)
	if err != nil {
		return err
	}
	req.RemoteAddr = from.RemoteAddr
	req.Host = from.Host
	if v := from.Header.Values("X-Forwarded-For"); len(v) > 0 {
		req.Header["X-Forwarded-For"] = v
	}
	req.Header.Set("User-Agent", "tokenward-console ("+from.UserAgent()+")")
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}}
	c.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 300 {
		var eb api.ErrorBody
		json.Unmarshal(rec.body.Bytes(), &eb)
		if eb.Error.Code == "" {
			eb.Error.Code, eb.Error.Message = tokenward.EINTERNAL, "the API gave no answer"
		}
		return &apiError{Status: rec.status, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("console: decode %s %s: %w", method, target, err)
	}
	return nil
}

// unauthorized reports whether err is the API refusing the token itself.
func unauthorized(err error) bool {
	ae, ok := err.(*apiError)
	return ok && ae.Status == http.StatusUnauthorized
}
