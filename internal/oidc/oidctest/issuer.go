// Package oidctest is an in-process fake OIDC issuer for tests: discovery
// document and JWKS on a loopback httptest server, RSA and EC keys it can
// rotate, real JWTs signed with go-jose, and the forged tokens of common
// attacks (alg none, HMAC algorithm confusion, tampered payload, unknown kid).
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer is a fake OIDC issuer. Its URL is the issuer ("iss") of the tokens
// it signs.
type Issuer struct {
	URL    string
	Server *httptest.Server

	jwksRequests      atomic.Int64
	discoveryRequests atomic.Int64

	mu        sync.Mutex
	keys      map[string]*key // every key it can sign with, by kid
	published []string        // kids in the JWKS, in order
	current   string          // kid Sign uses by default
	n         int
}

type key struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// NewIssuer starts an issuer with one published RSA (RS256) key, the one
// Sign uses, and one published EC (ES256) key. The server stops at the end
// of the test.
func NewIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	iss := &Issuer{keys: map[string]*key{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.discoveryRequests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/.well-known/jwks",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksRequests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(iss.JWKS())
	})
	iss.Server = httptest.NewServer(mux)
	iss.URL = iss.Server.URL
	tb.Cleanup(iss.Server.Close)
	rsaKid := iss.AddKey(tb, jose.RS256, true)
	iss.AddKey(tb, jose.ES256, true)
	iss.mu.Lock()
	iss.current = rsaKid
	iss.mu.Unlock()
	return iss
}

// AddKey makes a new key of alg (RS256 or ES256) and returns its kid. An
// unpublished key signs tokens whose kid the verifier cannot know until
// Publish.
func (i *Issuer) AddKey(tb testing.TB, alg jose.SignatureAlgorithm, publish bool) string {
	tb.Helper()
	var priv crypto.Signer
	switch alg {
	case jose.RS256:
		priv = rsaKey(tb)
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		priv = k
	default:
		tb.Fatalf("oidctest: unsupported algorithm %s", alg)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.n++
	kid := fmt.Sprintf("key-%d-%s", i.n, strings.ToLower(string(alg)))
	i.keys[kid] = &key{kid: kid, alg: alg, priv: priv}
	if publish {
		i.published = append(i.published, kid)
	}
	return kid
}

// Publish adds kid to the JWKS.
func (i *Issuer) Publish(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = append(i.published, kid)
}

// Retire removes kid from the JWKS; Sign can still use it.
func (i *Issuer) Retire(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := i.published[:0]
	for _, k := range i.published {
		if k != kid {
			out = append(out, k)
		}
	}
	i.published = out
}

// Rotate adds a new published RSA key and makes it the one Sign uses. With
// retireOld, the previous signing key leaves the JWKS (a swap); without, it
// stays (an overlap, as real issuers do). It returns the new kid.
func (i *Issuer) Rotate(tb testing.TB, retireOld bool) string {
	tb.Helper()
	kid := i.AddKey(tb, jose.RS256, true)
	i.mu.Lock()
	old := i.current
	i.current = kid
	i.mu.Unlock()
	if retireOld {
		i.Retire(old)
	}
	return kid
}

// CurrentKid returns the kid Sign uses by default.
func (i *Issuer) CurrentKid() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current
}

// JWKS returns the published public keys as a JWKS document.
func (i *Issuer) JWKS() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	set := jose.JSONWebKeySet{}
	for _, kid := range i.published {
		k := i.keys[kid]
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: kid, Algorithm: string(k.alg), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	return b
}

// WriteJWKS writes the published keys to a file in a temporary directory
// and returns its path (for static JWKS mode).
func (i *Issuer) WriteJWKS(tb testing.TB) string {
	tb.Helper()
	path := tb.TempDir() + "/jwks.json"
	if err := os.WriteFile(path, i.JWKS(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// JWKSRequests returns how many times the JWKS was fetched.
func (i *Issuer) JWKSRequests() int { return int(i.jwksRequests.Load()) }

// DiscoveryRequests returns how many times the discovery document was fetched.
func (i *Issuer) DiscoveryRequests() int { return int(i.discoveryRequests.Load()) }

// SignOption changes how Sign signs.
type SignOption func(*signConfig)

type signConfig struct {
	kid       string
	headerKid *string
}

// WithKey signs with the key kid (published or not).
func WithKey(kid string) SignOption { return func(c *signConfig) { c.kid = kid } }

// WithHeaderKid puts kid in the header whatever key signs; "" leaves the
// kid out.
func WithHeaderKid(kid string) SignOption { return func(c *signConfig) { c.headerKid = &kid } }

// Sign returns a compact JWT of claims signed by the current key (or the one
// WithKey names).
func (i *Issuer) Sign(tb testing.TB, claims map[string]any, opts ...SignOption) string {
	tb.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return i.SignPayload(tb, payload, opts...)
}

// SignPayload signs payload as it is, JSON or not (for fuzzing).
func (i *Issuer) SignPayload(tb testing.TB, payload []byte, opts ...SignOption) string {
	tb.Helper()
	cfg := signConfig{kid: i.CurrentKid()}
	for _, o := range opts {
		o(&cfg)
	}
	i.mu.Lock()
	k := i.keys[cfg.kid]
	i.mu.Unlock()
	if k == nil {
		tb.Fatalf("oidctest: no key %q", cfg.kid)
	}
	headerKid := k.kid
	if cfg.headerKid != nil {
		headerKid = *cfg.headerKid
	}
	opt := (&jose.SignerOptions{}).WithType("JWT")
	if headerKid != "" {
		opt = opt.WithHeader(jose.HeaderKey("kid"), headerKid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opt)
	if err != nil {
		tb.Fatal(err)
	}
	return sign(tb, signer, payload)
}

func sign(tb testing.TB, signer jose.Signer, payload []byte) string {
	tb.Helper()
	obj, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// NoneToken returns an unsigned token with header alg "none" and the kid of
// the current key: what an attacker sends hoping the verifier skips the
// signature.
func (i *Issuer) NoneToken(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": i.CurrentKid()})
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "."
}

// HMACConfusionToken returns a token signed with HS256 whose HMAC secret is
// the current RSA key's public key in PEM form: it verifies if a verifier
// lets the token's alg header pick HMAC and feeds it the public key.
func (i *Issuer) HMACConfusionToken(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	i.mu.Lock()
	k := i.keys[i.current]
	i.mu.Unlock()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	opt := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), k.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, opt)
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return sign(tb, signer, payload)
}

// Tamper returns token with its payload replaced by claims and its header
// and signature kept: a forgery the signature check must catch.
func Tamper(tb testing.TB, token string, claims map[string]any) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("oidctest: not a compact JWS")
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// GitHubClaims returns the claims of a GitHub Actions identity token for a
// push to main of acme/payments deploying to production, issued at now and
// valid for five minutes.
func GitHubClaims(issuer, audience string, now time.Time) map[string]any {
	return map[string]any{
		"iss":                   issuer,
		"aud":                   audience,
		"sub":                   "repo:acme/payments:environment:production",
		"jti":                   "6f1a7c9e-3b2d-4e8f-9a1b-" + fmt.Sprint(now.UnixNano()),
		"iat":                   now.Unix(),
		"nbf":                   now.Unix(),
		"exp":                   now.Add(5 * time.Minute).Unix(),
		"repository":            "acme/payments",
		"repository_owner":      "acme",
		"repository_id":         "123456789",
		"repository_visibility": "private",
		"ref":                   "refs/heads/main",
		"ref_type":              "branch",
		"environment":           "production",
		"workflow":              "deploy",
		"workflow_ref":          "acme/payments/.github/workflows/deploy.yml@refs/heads/main",
		"job_workflow_ref":      "acme/payments/.github/workflows/deploy.yml@refs/heads/main",
		"run_id":                "9876543210",
		"run_number":            "42",
		"run_attempt":           "1",
		"actor":                 "octocat",
		"event_name":            "push",
		"sha":                   "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
		"runner_environment":    "github-hosted",
	}
}

// GitLabClaims returns the claims of a GitLab CI id_token for a protected
// main pipeline of acme/payments deploying to production. Like GitLab, it
// sends ref_protected as the string "true".
func GitLabClaims(issuer, audience string, now time.Time) map[string]any {
	return map[string]any{
		"iss":                   issuer,
		"aud":                   audience,
		"sub":                   "project_path:acme/payments:ref_type:branch:ref:main",
		"jti":                   "0b5e8a4c-" + fmt.Sprint(now.UnixNano()),
		"iat":                   now.Unix(),
		"nbf":                   now.Unix(),
		"exp":                   now.Add(5 * time.Minute).Unix(),
		"namespace_id":          "72",
		"namespace_path":        "acme",
		"project_id":            "1234",
		"project_path":          "acme/payments",
		"user_id":               "31",
		"user_login":            "alice",
		"user_email":            "alice@example.com",
		"pipeline_id":           "556677",
		"pipeline_source":       "push",
		"job_id":                "889900",
		"ref":                   "main",
		"ref_type":              "branch",
		"ref_path":              "refs/heads/main",
		"ref_protected":         "true",
		"environment":           "production",
		"environment_protected": "true",
		"deployment_tier":       "production",
		"sha":                   "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
		"ci_config_ref_uri":     "gitlab.com/acme/payments//.gitlab-ci.yml@refs/heads/main",
		"runner_environment":    "gitlab-hosted",
	}
}

// rsaKey makes a fresh key each time: a key shared between two issuers or
// two kids would let a forged-key test pass by accident.
func rsaKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
