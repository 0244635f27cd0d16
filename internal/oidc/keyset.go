package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/tokenward/tokenward"
)

// allowedAlgs is the signature algorithm allowlist. "none" and every HMAC
// algorithm are absent on purpose: a public JWKS must never verify an HMAC.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// maxJWKSBytes bounds a JWKS document or discovery document.
const maxJWKSBytes = 1 << 20

// errRefreshLimited says a key refresh was skipped because the last one was
// too recent.
var errRefreshLimited = errors.New("key refresh rate limited")

// keySet is a go-oidc KeySet that caches an issuer's public keys and
// refreshes them when a token names a key it does not hold, at most once per
// minInterval. go-oidc's RemoteKeySet refetches on every unknown kid, which
// lets anyone make the server hammer the issuer with made-up kids.
type keySet struct {
	source      string // URL or file, for messages
	fetch       func(ctx context.Context) ([]jose.JSONWebKey, error)
	now         func() time.Time
	minInterval time.Duration

	fetchMu sync.Mutex // one fetch at a time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	lastFetch time.Time // zero: never fetched
	fetches   int
}

// VerifySignature checks the signature of jwt with the cached keys, then,
// if none verifies, with freshly fetched ones (rate limited). It returns the
// verified payload.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if p, ok := verifyWith(k.cached(), jws, kid); ok {
		return p, nil
	}
	refreshErr := k.refresh(ctx)
	// Verify again even when this refresh was skipped: a concurrent one may
	// have just brought the key.
	if p, ok := verifyWith(k.cached(), jws, kid); ok {
		return p, nil
	}
	switch {
	case errors.Is(refreshErr, errRefreshLimited):
		return nil, fmt.Errorf("no key %q verifies the signature (%v)", tokenward.Printable(kid), refreshErr)
	case refreshErr != nil:
		return nil, fmt.Errorf("no cached key %q verifies the signature and fetching keys from %s failed: %v", tokenward.Printable(kid), k.source, refreshErr)
	}
	return nil, fmt.Errorf("no key %q of %s verifies the signature", tokenward.Printable(kid), k.source)
}

func verifyWith(keys []jose.JSONWebKey, jws *jose.JSONWebSignature, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if p, err := jws.Verify(&keys[i]); err == nil {
			return p, true
		}
	}
	return nil, false
}

func (k *keySet) cached() []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
}

// refresh fetches the keys unless the last fetch, successful or not, was
// less than minInterval ago.
func (k *keySet) refresh(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	now := k.now()
	k.mu.Lock()
	if !k.lastFetch.IsZero() && now.Sub(k.lastFetch) < k.minInterval {
		k.mu.Unlock()
		return errRefreshLimited
	}
	k.lastFetch = now
	k.fetches++
	k.mu.Unlock()

	keys, err := k.fetch(ctx)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

// Fetches returns how many times the keys were fetched.
func (k *keySet) Fetches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetches
}

// parseJWKS reads a JWKS document and keeps only usable public signing keys:
// a symmetric ("oct") or private key in a published set is dropped, never
// trusted.
func parseJWKS(b []byte) ([]jose.JSONWebKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %v", err)
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(r, &k); err != nil {
			// An unknown key type (Ed448, post-quantum) is skipped, as RFC 7517
			// section 5 asks; it cannot verify our algorithms anyway.
			continue
		}
		if !k.Valid() || !k.IsPublic() {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		keys = append(keys, k.Public())
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no usable public signing key")
	}
	return keys, nil
}

// fetchJWKSURL returns a fetch function that GETs the JWKS at u.
func fetchJWKSURL(client *http.Client, u string) func(ctx context.Context) ([]jose.JSONWebKey, error) {
	return func(ctx context.Context) ([]jose.JSONWebKey, error) {
		// The refresh must not die with the one request that triggered it:
		// other requests wait for the same keys.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %v", u, err)
		}
		if len(b) > maxJWKSBytes {
			return nil, fmt.Errorf("GET %s: JWKS larger than %d bytes", u, maxJWKSBytes)
		}
		return parseJWKS(b)
	}
}

// fetchJWKSFile returns a fetch function that reads the JWKS in a file, so
// an air-gapped server picks up a rotated key once the file is replaced.
func fetchJWKSFile(path string) func(ctx context.Context) ([]jose.JSONWebKey, error) {
	return func(context.Context) ([]jose.JSONWebKey, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxJWKSBytes {
			return nil, fmt.Errorf("%s: JWKS larger than %d bytes", path, maxJWKSBytes)
		}
		keys, err := parseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return keys, nil
	}
}
