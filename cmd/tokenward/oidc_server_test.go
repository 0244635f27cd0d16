//go:build !tokenward_client

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOIDCServerConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     oidcServerConfig
		wantErr string
		wantIss string
	}{
		{"defaults", oidcServerConfig{MaxTTL: time.Hour, Leeway: time.Minute}, "", ""},
		{"jwks file", oidcServerConfig{MaxTTL: time.Hour, JWKSFiles: []string{"https://gitlab.com=" + file}}, "", "https://gitlab.com"},
		{"no file", oidcServerConfig{MaxTTL: time.Hour, JWKSFiles: []string{"https://gitlab.com="}}, "want ISSUER=FILE", ""},
		{"no issuer", oidcServerConfig{MaxTTL: time.Hour, JWKSFiles: []string{file}}, "want ISSUER=FILE", ""},
		{"http issuer", oidcServerConfig{MaxTTL: time.Hour, JWKSFiles: []string{"http://ci.example.com=" + file}}, "https", ""},
		{"missing file", oidcServerConfig{MaxTTL: time.Hour, JWKSFiles: []string{"https://gitlab.com=" + file + ".nope"}}, "no such file", ""},
		{"twice", oidcServerConfig{MaxTTL: time.Hour, JWKSFiles: []string{"https://gitlab.com=" + file, "https://gitlab.com=" + file}}, "given twice", ""},
		{"zero max ttl", oidcServerConfig{}, "--oidc-max-ttl", ""},
		{"huge leeway", oidcServerConfig{MaxTTL: time.Hour, Leeway: time.Hour}, "--oidc-leeway", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v; want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
			case tc.wantIss != "" && files[tc.wantIss] != file:
				t.Fatalf("got %v; want %s mapped to %s", files, tc.wantIss, file)
			}
		})
	}
}

// FuzzOIDCJWKSFlag parses arbitrary --oidc-jwks-file values: an accepted
// one maps a valid issuer to a file that exists.
func FuzzOIDCJWKSFlag(f *testing.F) {
	f.Add("https://gitlab.com=/dev/null")
	f.Add("https://a=b=c")
	f.Add("=")
	f.Fuzz(func(t *testing.T, kv string) {
		cfg := oidcServerConfig{MaxTTL: time.Hour, JWKSFiles: []string{kv}}
		files, err := cfg.Validate()
		if err != nil {
			return
		}
		for iss, file := range files {
			if !strings.HasPrefix(iss, "https://") && !strings.HasPrefix(iss, "http://") {
				t.Fatalf("accepted issuer %q", iss)
			}
			if _, err := os.Stat(file); err != nil {
				t.Fatalf("accepted missing file %q", file)
			}
		}
	})
}
