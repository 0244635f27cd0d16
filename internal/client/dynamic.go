package client

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// sourcePath is /v1/dynamic/project/env/name for a project/env/name path.
func sourcePath(source string) path {
	parts := strings.Split(source, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return path{err: errors.New("dynamic source: want PROJECT/ENV/NAME")}
	}
	return envPath("/v1/dynamic", parts[0], parts[1]).name(api.KindSecret, parts[2])
}

func leasePath(id string) path { return at("/v1/leases").name(api.KindLease, id) }

// PutDynamicSource creates or replaces the dynamic source at source
// (project/env/name).
func (c *Client) PutDynamicSource(ctx context.Context, source string, in api.DynamicSourceRequest) (*api.DynamicSource, error) {
	var out api.DynamicSource
	err := c.do(ctx, "PUT", sourcePath(source), in, &out)
	return &out, err
}

// DynamicSource returns one source.
func (c *Client) DynamicSource(ctx context.Context, source string) (*api.DynamicSource, error) {
	var out api.DynamicSource
	err := c.do(ctx, "GET", sourcePath(source), nil, &out)
	return &out, err
}

// DynamicSources lists the sources the token may read under prefix ("" all).
func (c *Client) DynamicSources(ctx context.Context, prefix string) ([]*api.DynamicSource, error) {
	var out api.DynamicSourceList
	p := at("/v1/dynamic")
	if prefix != "" {
		p = p.then("?prefix=" + url.QueryEscape(prefix))
	}
	err := c.do(ctx, "GET", p, nil, &out)
	return out.Sources, err
}

// DeleteDynamicSource deletes a source without live leases.
func (c *Client) DeleteDynamicSource(ctx context.Context, source string) error {
	return c.do(ctx, "DELETE", sourcePath(source), nil, nil)
}

// Lease makes a credential from the source with a lease of the token's.
func (c *Client) Lease(ctx context.Context, source string) (*api.LeaseResponse, error) {
	var out api.LeaseResponse
	err := c.do(ctx, "POST", sourcePath(source).then("/lease"), nil, &out)
	return &out, err
}

// Leases lists the leases f selects that the token may manage.
func (c *Client) Leases(ctx context.Context, f tokenward.LeaseFilter) ([]*tokenward.Lease, error) {
	q := url.Values{}
	if f.Prefix != "" {
		q.Set("prefix", f.Prefix)
	}
	if f.TokenID != "" {
		q.Set("token", f.TokenID)
	}
	if f.Live {
		q.Set("live", strconv.FormatBool(true))
	}
	p := at("/v1/leases")
	if len(q) > 0 {
		p = p.then("?" + q.Encode())
	}
	var out api.LeaseList
	err := c.do(ctx, "GET", p, nil, &out)
	return out.Leases, err
}

// GetLease returns one lease.
func (c *Client) GetLease(ctx context.Context, id string) (*tokenward.Lease, error) {
	var out tokenward.Lease
	err := c.do(ctx, "GET", leasePath(id), nil, &out)
	return &out, err
}

// RenewLease extends a lease by increment from now ("" the source's TTL),
// at most to its max TTL: the answer's warnings say when it was capped.
func (c *Client) RenewLease(ctx context.Context, id, increment string) (*api.RenewedLease, error) {
	out := api.RenewedLease{Lease: &tokenward.Lease{}}
	var body any
	if increment != "" {
		body = api.RenewLeaseRequest{Increment: increment}
	}
	err := c.do(ctx, "POST", leasePath(id).then("/renew"), body, &out)
	return &out, err
}

// RevokeLease revokes one lease.
func (c *Client) RevokeLease(ctx context.Context, id string) (*tokenward.Lease, error) {
	var out tokenward.Lease
	err := c.do(ctx, "POST", leasePath(id).then("/revoke"), nil, &out)
	return &out, err
}

// RevokeLeases revokes every live lease under prefix the token may manage.
func (c *Client) RevokeLeases(ctx context.Context, prefix string) ([]*tokenward.Lease, error) {
	var out api.LeaseList
	err := c.do(ctx, "POST", at("/v1/leases/revoke"), api.RevokeLeasesRequest{Prefix: prefix}, &out)
	return out.Leases, err
}
