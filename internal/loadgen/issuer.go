package loadgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer is a minimal OIDC issuer on loopback for the oidc operation: a
// discovery document and a JWKS with one ES256 key, and Sign to make the
// identity tokens a CI system would hand its jobs. It lives only as long as
// the benchmark; its key never leaves this process.
type Issuer struct {
	URL    string // http://127.0.0.1:PORT, the "iss" of its tokens
	signer jose.Signer
	srv    *http.Server
}

// StartIssuer starts an issuer on a free loopback port.
func StartIssuer() (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	const kid = "bench-es256"
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	iss := &Issuer{URL: "http://" + ln.Addr().String(), signer: signer}
	discovery, err := json.Marshal(map[string]any{
		"issuer":                                iss.URL,
		"jwks_uri":                              iss.URL + "/.well-known/jwks",
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	serve := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/openid-configuration", serve(discovery))
	mux.Handle("GET /.well-known/jwks", serve(jwks))
	iss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go iss.srv.Serve(ln)
	return iss, nil
}

// Sign returns a compact JWT of claims signed with the issuer's key.
func (i *Issuer) Sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := i.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing an identity token: %w", err)
	}
	return obj.CompactSerialize()
}

// Close stops the issuer.
func (i *Issuer) Close() error {
	if err := i.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
