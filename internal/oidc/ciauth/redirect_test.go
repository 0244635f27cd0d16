package ciauth

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestFetchGitHubRedirects: the runner URL is https, so the request token
// must never travel in the clear, even when the runner answers with a
// redirect. Go's client keeps the Authorization header on a redirect to the
// same host (or a subdomain) whatever the scheme and port, so a redirect from
// https://runner.example.com to http://runner.example.com:PORT would carry it
// in plain text. Names under example.com are dialed to loopback servers.
func TestFetchGitHubRedirects(t *testing.T) {
	var mu sync.Mutex
	var plainAuth []string
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		plainAuth = append(plainAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value":"` + fakeJWT + `"}`))
	}))
	t.Cleanup(plain.Close)
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())

	var location string
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" {
			if r.Header.Get("Authorization") != "bearer "+requestToken {
				http.Error(w, "bad request token", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"value":"` + fakeJWT + `"}`))
			return
		}
		http.Redirect(w, r, location, http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)
	_, tlsPort, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())

	client := tlsSrv.Client()
	tr := client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	client.Transport = tr

	tests := []struct {
		name     string
		location string
		wantErr  string // "" means success
	}{
		{name: "https to http same host", location: "http://runner.example.com:" + plainPort + "/leak", wantErr: "redirect"},
		{name: "https to http subdomain", location: "http://evil.runner.example.com:" + plainPort + "/leak", wantErr: "redirect"},
		{name: "https to https same host", location: "https://runner.example.com:" + tlsPort + "/final"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			plainAuth = nil
			mu.Unlock()
			location = tt.location
			f := New()
			f.HTTPClient = client
			f.Getenv = env(map[string]string{
				"GITHUB_ACTIONS":                 "true",
				"ACTIONS_ID_TOKEN_REQUEST_URL":   "https://runner.example.com:" + tlsPort + "/_apis/token?api-version=2.0",
				"ACTIONS_ID_TOKEN_REQUEST_TOKEN": requestToken,
			})
			tok, _, err := f.Fetch(context.Background())
			mu.Lock()
			got := append([]string(nil), plainAuth...)
			mu.Unlock()
			for _, a := range got {
				if strings.Contains(a, requestToken) {
					t.Errorf("request token sent in plain http after a redirect to %s", tt.location)
				}
			}
			if tt.wantErr == "" {
				if err != nil || tok != fakeJWT {
					t.Fatalf("got %v; want the runner's token", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v; want error containing %q", err, tt.wantErr)
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

// TestFetchGitHubAudienceEncoding: an audience with query syntax stays one
// value and cannot add parameters (regression guard; already handled).
func TestFetchGitHubAudienceEncoding(t *testing.T) {
	tests := []struct {
		name     string
		audience string
	}{
		{name: "ampersand", audience: "tokenward&api-version=1.0"},
		{name: "hash", audience: "tokenward#frag"},
		{name: "plus and space", audience: "a+b c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got url.Values
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.URL.Query()
				_, _ = w.Write([]byte(`{"value":"` + fakeJWT + `"}`))
			}))
			t.Cleanup(srv.Close)
			f := New()
			f.Audience = tt.audience
			f.Getenv = env(map[string]string{
				"GITHUB_ACTIONS":                 "true",
				"ACTIONS_ID_TOKEN_REQUEST_URL":   srv.URL + "/_apis/token?api-version=2.0",
				"ACTIONS_ID_TOKEN_REQUEST_TOKEN": requestToken,
			})
			if _, _, err := f.Fetch(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(got["audience"]) != 1 || got.Get("audience") != tt.audience || len(got["api-version"]) != 1 || got.Get("api-version") != "2.0" {
				t.Fatalf("runner got query %v; want audience=%q and api-version=2.0 once each", got, tt.audience)
			}
		})
	}
}
