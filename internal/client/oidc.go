package client

import (
	"context"
	"time"

	"github.com/tokenward/tokenward"
)

// ClaimCondition is one claim condition of a binding. Op is "exact",
// "glob" or "one_of"; empty, the server derives it from Values as the
// manifest's pipelines do (one value: exact, or glob when it holds '*';
// several: one_of).
type ClaimCondition struct {
	Claim  string   `json:"claim"`
	Op     string   `json:"op,omitempty"`
	Values []string `json:"values"`
}

// BindingInput describes a trust binding to create (tokenward binding
// create, and apply for a manifest's pipelines).
type BindingInput struct {
	Name      string           `json:"name"`
	Preset    string           `json:"preset,omitempty"` // github or gitlab: fills Issuer
	Issuer    string           `json:"issuer,omitempty"`
	Audiences []string         `json:"audiences"`
	Claims    []ClaimCondition `json:"claims"`
	Grants    []string         `json:"grants"`
	TTL       string           `json:"ttl"` // Go duration, e.g. "15m"
	Disabled  bool             `json:"disabled,omitempty"`
}

// Binding is a trust binding as the server shows it.
type Binding struct {
	Name      string           `json:"name"`
	Issuer    string           `json:"issuer"`
	Audiences []string         `json:"audiences"`
	Claims    []ClaimCondition `json:"claims"`
	Grants    []string         `json:"grants"`
	TTL       string           `json:"ttl"`
	Enabled   bool             `json:"enabled"`
	CreatedAt time.Time        `json:"created_at,omitzero"`
	UpdatedAt time.Time        `json:"updated_at,omitzero"`
	CreatedBy string           `json:"created_by,omitempty"`
	Warnings  []string         `json:"warnings,omitempty"`
}

// CreateBinding creates a trust binding. It needs admin over every grant
// the binding gives; ECONFLICT if the name is taken.
func (c *Client) CreateBinding(ctx context.Context, in BindingInput) error {
	_, err := c.CreateBindingResult(ctx, in)
	return err
}

// CreateBindingResult creates a trust binding and returns it, with any
// warnings (a condition on a claim the preset's issuer does not issue).
func (c *Client) CreateBindingResult(ctx context.Context, in BindingInput) (*Binding, error) {
	if in.Audiences == nil {
		in.Audiences = []string{}
	}
	if in.Claims == nil {
		in.Claims = []ClaimCondition{}
	}
	in.Grants = nonNil(in.Grants)
	var b Binding
	err := c.do(ctx, "POST", "/v1/bindings", in, &b)
	return &b, err
}

// Bindings lists the bindings the caller administers.
func (c *Client) Bindings(ctx context.Context) ([]*Binding, error) {
	var out struct{ Bindings []*Binding }
	err := c.do(ctx, "GET", "/v1/bindings", nil, &out)
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

// GetBinding returns one binding.
func (c *Client) GetBinding(ctx context.Context, name string) (*Binding, error) {
	var b Binding
	err := c.do(ctx, "GET", "/v1/bindings/"+esc(name), nil, &b)
	return &b, err
}

// DeleteBinding deletes a binding and returns it.
func (c *Client) DeleteBinding(ctx context.Context, name string) (*Binding, error) {
	var b Binding
	err := c.do(ctx, "DELETE", "/v1/bindings/"+esc(name), nil, &b)
	return &b, err
}

// SetBindingEnabled enables or disables a binding.
func (c *Client) SetBindingEnabled(ctx context.Context, name string, enabled bool) (*Binding, error) {
	op := "/disable"
	if enabled {
		op = "/enable"
	}
	var b Binding
	err := c.do(ctx, "POST", "/v1/bindings/"+esc(name)+op, nil, &b)
	return &b, err
}

// LoginOIDC exchanges a CI identity token (jwt) for a just-in-time token
// through binding ("": the one that matches). It needs no token of its
// own. It returns the minted token's record and the token, shown once.
// Its errors never hold jwt or the minted token.
func (c *Client) LoginOIDC(ctx context.Context, binding, jwt string) (*tokenward.Token, string, error) {
	var out struct {
		Token  *tokenward.Token `json:"token"`
		Secret string           `json:"secret"`
	}
	err := c.do(ctx, "POST", "/v1/auth/oidc/login", map[string]string{"binding": binding, "jwt": jwt}, &out)
	if err != nil {
		return nil, "", err
	}
	return out.Token, out.Secret, nil
}
