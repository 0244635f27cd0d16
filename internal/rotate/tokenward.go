package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokenward/tokenward"
)

// TokenMinter mints and revokes tokenward service tokens; the server's
// token service implements it.
type TokenMinter interface {
	// Mint returns a new token with the same grants, kind and lifetime
	// policy as the token like. It must not return a broader token.
	Mint(ctx context.Context, like string) (string, error)
	// Revoke revokes token; revoking a revoked token succeeds.
	Revoke(ctx context.Context, token string) error
}

// TokenChecker is an optional power of a TokenMinter: Check reports
// whether token is valid (known, unrevoked, unexpired).
type TokenChecker interface {
	Check(ctx context.Context, token string) error
}

// Tokenward is the "tokenward" rotator: the secret is a tokenward service
// token. Create mints a new one like CURRENT; Revoke revokes the old one
// at the end of grace. It takes no config.
type Tokenward struct {
	Tokens TokenMinter
}

// Validate implements Rotator.
func (t *Tokenward) Validate(config map[string]string) error {
	for k := range config {
		return errInvalid("tokenward rotator: unknown config key %q", tokenward.Printable(k))
	}
	return nil
}

// Create implements Rotator.
func (t *Tokenward) Create(ctx context.Context, req *Request) ([]byte, error) {
	if len(req.Current) == 0 {
		// The rotation started without a value, and keeps that start.
		return nil, Permanent(errInvalid("tokenward rotator: %s has no CURRENT token to mint like", tokenward.Printable(req.Path)))
	}
	tok, err := t.Tokens.Mint(ctx, string(req.Current))
	if err != nil {
		return nil, fmt.Errorf("mint token: %w", err)
	}
	if tok == "" {
		return nil, errors.New("mint token: got an empty token")
	}
	return []byte(tok), nil
}

// Set implements Rotator: a minted token is live already.
func (t *Tokenward) Set(context.Context, *Request) error { return nil }

// Test implements Rotator.
func (t *Tokenward) Test(ctx context.Context, req *Request) error {
	if c, ok := t.Tokens.(TokenChecker); ok {
		if err := c.Check(ctx, string(req.Pending)); err != nil {
			return fmt.Errorf("check new token: %w", err)
		}
	}
	return nil
}

// Revoke implements Rotator.
func (t *Tokenward) Revoke(ctx context.Context, req *Request) error {
	if err := t.Tokens.Revoke(ctx, string(req.Current)); err != nil {
		return fmt.Errorf("revoke previous token: %w", err)
	}
	return nil
}

// Discard implements Discarder: the minted token is never used.
func (t *Tokenward) Discard(ctx context.Context, req *Request) error {
	return t.Tokens.Revoke(ctx, string(req.Pending))
}
