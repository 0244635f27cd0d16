package client

import (
	"context"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// CreateBinding creates a trust binding. It needs admin over every grant
// the binding gives; ECONFLICT if the name is taken.
func (c *Client) CreateBinding(ctx context.Context, in api.CreateBindingRequest) error {
	_, err := c.CreateBindingResult(ctx, in)
	return err
}

// CreateBindingResult creates a trust binding and returns it, with any
// warnings (a condition on a claim the preset's issuer does not issue).
func (c *Client) CreateBindingResult(ctx context.Context, in api.CreateBindingRequest) (*api.Binding, error) {
	in.Audiences, in.Claims, in.Grants = nonNil(in.Audiences), nonNil(in.Claims), nonNil(in.Grants)
	var b api.Binding
	err := c.do(ctx, "POST", at("/v1/bindings"), in, &b)
	return &b, err
}

// Bindings lists the bindings the caller administers.
func (c *Client) Bindings(ctx context.Context) ([]*api.Binding, error) {
	var out api.BindingList
	err := c.do(ctx, "GET", at("/v1/bindings"), nil, &out)
	return out.Bindings, err
}

// BindingNames lists the names of the bindings the caller administers (the
// state manifest.Plan compares against).
func (c *Client) BindingNames(ctx context.Context) ([]string, error) {
	bs, err := c.Bindings(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	return names, nil
}

func bindingPath(name string) path { return at("/v1/bindings").name(api.KindBinding, name) }

// GetBinding returns one binding.
func (c *Client) GetBinding(ctx context.Context, name string) (*api.Binding, error) {
	var b api.Binding
	err := c.do(ctx, "GET", bindingPath(name), nil, &b)
	return &b, err
}

// DeleteBinding deletes a binding and returns it.
func (c *Client) DeleteBinding(ctx context.Context, name string) (*api.Binding, error) {
	var b api.Binding
	err := c.do(ctx, "DELETE", bindingPath(name), nil, &b)
	return &b, err
}

// SetBindingEnabled enables or disables a binding.
func (c *Client) SetBindingEnabled(ctx context.Context, name string, enabled bool) (*api.Binding, error) {
	op := "/disable"
	if enabled {
		op = "/enable"
	}
	var b api.Binding
	err := c.do(ctx, "POST", bindingPath(name).then(op), nil, &b)
	return &b, err
}

// LoginOIDC exchanges a CI identity token (jwt) for a just-in-time token
// through binding ("": the one that matches). It needs no token of its
// own. It returns the minted token's record and the token, shown once.
// Its errors never hold jwt or the minted token.
func (c *Client) LoginOIDC(ctx context.Context, binding, jwt string) (*tokenward.Token, string, error) {
	var out api.CreateTokenResponse
	err := c.do(ctx, "POST", at("/v1/auth/oidc/login"), api.OIDCLoginRequest{Binding: binding, JWT: jwt}, &out)
	if err != nil {
		return nil, "", err
	}
	return out.Token, out.Secret, nil
}
