package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestParseJWKS(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "ec", Algorithm: "ES256", Use: "sig"})
	private, _ := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: "ec-private", Algorithm: "ES256"})
	enc, _ := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "ec-enc", Use: "enc"})
	oct := `{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ","kid":"hmac","alg":"HS256"}`
	unknown := `{"kty":"OKP","crv":"Ed448","x":"AAAA","kid":"ed448"}`
	tests := []struct {
		name     string
		doc      string
		wantKids []string
		wantErr  string
	}{
		{"public key", `{"keys":[` + string(pub) + `]}`, []string{"ec"}, ""},
		{"symmetric key ignored", `{"keys":[` + oct + `,` + string(pub) + `]}`, []string{"ec"}, ""},
		{"private key ignored", `{"keys":[` + string(private) + `,` + string(pub) + `]}`, []string{"ec"}, ""},
		{"encryption key ignored", `{"keys":[` + string(enc) + `,` + string(pub) + `]}`, []string{"ec"}, ""},
		{"unknown key type skipped", `{"keys":[` + unknown + `,` + string(pub) + `]}`, []string{"ec"}, ""},
		{"only a symmetric key", `{"keys":[` + oct + `]}`, nil, "no usable public signing key"},
		{"empty", `{"keys":[]}`, nil, "no usable public signing key"},
		{"not JSON", `<html>`, nil, "decoding JWKS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v; want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.KeyID)
				if !k.IsPublic() {
					t.Fatalf("got a non-public key %s; want public keys only", k.KeyID)
				}
			}
			if strings.Join(kids, ",") != strings.Join(tt.wantKids, ",") {
				t.Fatalf("got kids %v; want %v", kids, tt.wantKids)
			}
		})
	}
}

func TestJWKSFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, []byte(`{"keys":[`+strings.Repeat(" ", maxJWKSBytes)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fetchJWKSFile(path)(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v; want a too-large error", err)
	}
}

// FuzzParseJWKS checks that a JWKS from the network never panics the parser
// and never yields a key that is not a valid public key.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseJWKS(b)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatalf("got no keys and no error")
		}
		for _, k := range keys {
			if !k.IsPublic() || !k.Valid() {
				t.Fatalf("got key %q that is not a valid public key", k.KeyID)
			}
		}
	})
}
