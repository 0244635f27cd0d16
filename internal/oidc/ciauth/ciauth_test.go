package ciauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

const (
	requestToken = "ghs_runnerRequestTokenSecret0123456789"
	fakeJWT      = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvcGF5bWVudHMifQ.c2lnbmF0dXJlLXNlY3JldC1ieXRlcw"
)

// runner is an httptest server that answers like the Actions runner's
// token endpoint: bearer request token, audience query, {"value": jwt}.
func runner(t *testing.T, status int, body string) (*httptest.Server, *string) {
	t.Helper()
	var gotAudience string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "missing api-version", http.StatusBadRequest)
			return
		}
		auth := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(auth), []byte("bearer "+requestToken)) != 1 {
			http.Error(w, "bad request token", http.StatusUnauthorized)
			return
		}
		gotAudience = r.URL.Query().Get("audience")
		if status != http.StatusOK {
			http.Error(w, "no", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if body != "" {
			_, _ = w.Write([]byte(body))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"count": len(fakeJWT), "value": fakeJWT})
	}))
	t.Cleanup(srv.Close)
	return srv, &gotAudience
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFetchGitHub(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		token    string // request token the job has
		audience string
		wantAud  string
		wantErr  string
	}{
		{name: "default audience", status: 200, token: requestToken, wantAud: "tokenward"},
		{name: "custom audience", status: 200, token: requestToken, audience: "https://tokenward.example.com", wantAud: "https://tokenward.example.com"},
		{name: "wrong request token", status: 200, token: "ghs_wrongRequestTokenSecretXXXXXXXXX", wantErr: "status 401"},
		{name: "runner error", status: 500, token: requestToken, wantErr: "status 500"},
		{name: "not JSON", status: 200, body: "<html>", token: requestToken, wantErr: "not JSON"},
		{name: "empty value", status: 200, body: `{"value":""}`, token: requestToken, wantErr: "empty"},
		{name: "value not a JWT", status: 200, body: `{"value":"abc"}`, token: requestToken, wantErr: "not a compact JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, gotAud := runner(t, tt.status, tt.body)
			f := New()
			f.Audience = tt.audience
			f.Getenv = env(map[string]string{
				"GITHUB_ACTIONS":                 "true",
				"ACTIONS_ID_TOKEN_REQUEST_URL":   srv.URL + "/_apis/token?api-version=2.0",
				"ACTIONS_ID_TOKEN_REQUEST_TOKEN": tt.token,
			})
			tok, src, err := f.Fetch(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v; want error containing %q", err, tt.wantErr)
				}
				assertNoSecrets(t, err.Error(), tt.token)
				return
			}
			if err != nil {
				t.Fatalf("got %v; want success", err)
			}
			if tok != fakeJWT || src != SourceGitHub {
				t.Fatalf("got %q from %s; want the runner's token from github", tok, src)
			}
			if *gotAud != tt.wantAud {
				t.Fatalf("got audience %q; want %q", *gotAud, tt.wantAud)
			}
		})
	}
}

func assertNoSecrets(t *testing.T, text string, extra ...string) {
	t.Helper()
	for _, s := range append([]string{requestToken, fakeJWT, strings.Split(fakeJWT, ".")[2]}, extra...) {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("secret leaked into %q", text)
		}
	}
}

func TestFetchGitHubRefusesPlainHTTP(t *testing.T) {
	f := New()
	f.Getenv = env(map[string]string{
		"GITHUB_ACTIONS":                 "true",
		"ACTIONS_ID_TOKEN_REQUEST_URL":   "http://runner.example.com/token?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": requestToken,
	})
	_, _, err := f.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "must be https") {
		t.Fatalf("got %v; want a refusal of plain http off loopback", err)
	}
	assertNoSecrets(t, err.Error())
}

func TestFetchEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "jwt")
	if err := os.WriteFile(good, []byte(fakeJWT+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("two words"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		jwtEnv  string
		file    string
		wantSrc Source
		wantErr string
	}{
		{name: "gitlab default variable", env: map[string]string{"GITLAB_CI": "true", "TOKENWARD_ID_TOKEN": fakeJWT}, wantSrc: SourceGitLab},
		{name: "gitlab custom variable", env: map[string]string{"GITLAB_CI": "true", "VAULT_ID_TOKEN": fakeJWT}, jwtEnv: "VAULT_ID_TOKEN", wantSrc: SourceGitLab},
		{name: "gitlab variable missing", env: map[string]string{"GITLAB_CI": "true"}, wantErr: "declare `id_tokens: TOKENWARD_ID_TOKEN"},
		{name: "generic env", env: map[string]string{"TOKENWARD_ID_TOKEN": fakeJWT}, wantSrc: SourceEnv},
		{name: "file wins over CI", env: map[string]string{"GITHUB_ACTIONS": "true"}, file: good, wantSrc: SourceFile},
		{name: "file missing", file: filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "file not a JWT", file: bad, wantErr: "whitespace"},
		{name: "github without permission", env: map[string]string{"GITHUB_ACTIONS": "true"}, wantErr: "id-token: write"},
		{name: "nowhere", env: map[string]string{}, wantErr: "no CI identity token found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New()
			f.Getenv = env(tt.env)
			f.JWTFile = tt.file
			if tt.jwtEnv != "" {
				f.JWTEnv = tt.jwtEnv
			}
			tok, src, err := f.Fetch(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v; want error containing %q", err, tt.wantErr)
				}
				if tokenward.ErrorCode(err) != tokenward.EINVALID {
					t.Fatalf("got code %s; want %s", tokenward.ErrorCode(err), tokenward.EINVALID)
				}
				assertNoSecrets(t, err.Error())
				return
			}
			if err != nil {
				t.Fatalf("got %v; want success", err)
			}
			if tok != fakeJWT || src != tt.wantSrc {
				t.Fatalf("got token of %d bytes from %s; want the fake JWT from %s", len(tok), src, tt.wantSrc)
			}
		})
	}
}
