package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
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
	lastErr   error     // the last fetch's failure; nil once one succeeds
	fetches   int
}

// keysUnavailableKey is the context key of an *error that VerifySignature
// sets when it could not tell: no cached key is the token's and the keys
// could not be fetched. go-oidc passes the context through but keeps only
// the text of VerifySignature's error.
type keysUnavailableKey struct{}

// VerifySignature checks the signature of jwt with the cached keys, then,
// if none verifies, with freshly fetched ones (rate limited). It returns the
// verified payload. When no key it holds is the token's and the keys could
// not be fetched, it also sets the *error under keysUnavailableKey in ctx.
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
	fetchErr := refreshErr
	if errors.Is(refreshErr, errRefreshLimited) {
		fetchErr = k.lastFetchErr() // the limit holds the last fetch's outcome
	}
	switch {
	case fetchErr != nil:
		err = fmt.Errorf("no cached key %q verifies the signature and fetching keys from %s failed: %v", tokenward.Printable(kid), k.source, fetchErr)
	case errors.Is(refreshErr, errRefreshLimited):
		err = fmt.Errorf("no key %q verifies the signature (%v)", tokenward.Printable(kid), refreshErr)
	default:
		err = fmt.Errorf("no key %q of %s verifies the signature", tokenward.Printable(kid), k.source)
	}
	if fetchErr != nil && !holdsKey(k.cached(), kid) {
		// Not the token's fault: the key that could verify it is out of
		// reach (an issuer outage, a broken key file), so the caller may
		// try again. A token naming a key we hold failed on its own.
		if p, ok := ctx.Value(keysUnavailableKey{}).(*error); ok {
			*p = err
		}
	}
	return nil, err
}

// holdsKey reports whether keys hold the key kid names ("": any key).
func holdsKey(keys []jose.JSONWebKey, kid string) bool {
	return slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return kid == "" || k.KeyID == kid })
}

func (k *keySet) lastFetchErr() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
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
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastErr = err
	if err != nil {
		return err
	}
	k.keys = keys
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
