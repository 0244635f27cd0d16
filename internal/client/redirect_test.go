package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tokenward/tokenward/internal/api"
)

// TestRedirectsNotFollowed: the client never follows a redirect. Following
// one sends the bearer token to another origin (Go keeps Authorization
// when only the port or scheme differs: https → http on the same host),
// resends a PUT's body — the secret value — to wherever a 307/308 points,
// and turns a PUT answered 301/302/303 into a GET whose 200 the caller
// takes for a successful write.
func TestRedirectsNotFollowed(t *testing.T) {
	const fakeToken = "tws_FAKE_REVIEW_TOKEN"
	const fakeValue = "FAKE_REVIEW_VALUE"
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var mu sync.Mutex
			var seen []string // what reached the redirect's target
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				seen = append(seen, r.Method+" auth="+r.Header.Get("Authorization")+" body="+string(b))
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"project":"payments","env":"prod","name":"X","version":1}`))
			}))
			defer target.Close()
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path, status)
			}))
			defer origin.Close()
			c, err := New(origin.URL, fakeToken)
			if err != nil {
				t.Fatal(err)
			}
			v := fakeValue
			_, err = c.SetSecret(context.Background(), "payments", "prod", "X", api.PutSecretRequest{Value: &v})
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 0 {
				t.Errorf("the redirect was followed: the target got %q", seen)
			}
			for _, s := range seen {
				if strings.Contains(s, fakeToken) {
					t.Errorf("the token reached the redirect's target")
				}
				if strings.Contains(s, fakeValue) {
					t.Errorf("the secret value reached the redirect's target")
				}
			}
			if err == nil {
				t.Errorf("SetSecret answered with a redirect: got no error")
			} else if strings.Contains(err.Error(), fakeToken) || strings.Contains(err.Error(), fakeValue) {
				t.Errorf("error holds the token or value: %v", err)
			}
		})
	}
}
