package core

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
)

// BindingStore keeps OIDC trust bindings and the record of exchanged
// identity tokens. Errors are *tokenward.Error with ENOTFOUND or ECONFLICT
// where a caller branches on them. internal/storetest.RunOIDC is the
// contract.
type BindingStore interface {
	// CreateBinding stores b; ECONFLICT if its name is taken.
	CreateBinding(ctx context.Context, b *oidc.Binding) error
	// Binding returns one binding, or ENOTFOUND.
	Binding(ctx context.Context, name string) (*oidc.Binding, error)
	// Bindings lists every binding, by name.
	Bindings(ctx context.Context) ([]*oidc.Binding, error)
	// SetBindingEnabled enables or disables a binding; ENOTFOUND if none.
	SetBindingEnabled(ctx context.Context, name string, enabled bool, at time.Time) error
	// DeleteBinding removes a binding; ENOTFOUND if none.
	DeleteBinding(ctx context.Context, name string) error
	// SeenIdentityToken atomically checks and records an identity token's
	// replay id: true when id is recorded and unexpired at now, else it
	// records id until until and returns false. Two concurrent calls with
	// one id never both return false.
	SeenIdentityToken(ctx context.Context, id string, until, now time.Time) (bool, error)
}

// OIDC configures just-in-time CI credentials. Set Core.OIDC to enable
// them; without it every binding and exchange operation is EUNAVAILABLE.
type OIDC struct {
	Store BindingStore
	// Verifier verifies identity tokens. Its Replay is replaced by one
	// backed by Store, its Now by the core's clock and its MaxTTL by MaxTTL.
	Verifier *oidc.Verifier
	// MaxTTL caps binding TTLs and minted tokens' lifetimes.
	MaxTTL time.Duration
	// JWKSFiles maps an issuer to a JWKS file read instead of discovery
	// (air-gapped servers). It is server configuration, never API input.
	JWKSFiles map[string]string

	setup sync.Once
}

func (c *Core) oidc() (*OIDC, error) {
	if c.OIDC == nil || c.OIDC.Store == nil || c.OIDC.Verifier == nil {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "OIDC login is not enabled on this server")
	}
	o := c.OIDC
	// Once, before the first use: requests read these fields concurrently.
	o.setup.Do(func() {
		if o.MaxTTL <= 0 {
			o.MaxTTL = oidc.DefaultMaxTTL
		}
		now := func() time.Time { return c.Now() }
		o.Verifier.Now = now
		o.Verifier.MaxTTL = o.MaxTTL
		o.Verifier.Replay = replayStore{o.Store, now}
	})
	return o, nil
}

// replayStore is an oidc.ReplayCache on the BindingStore, so every server
// sharing the database refuses a replay.
type replayStore struct {
	s   BindingStore
	now func() time.Time
}

func (r replayStore) Seen(ctx context.Context, id string, until time.Time) (bool, error) {
	return r.s.SeenIdentityToken(ctx, id, until, r.now())
}

// requireBindingAdmin allows managing b only to a token that holds admin
// over every grant b gives: a binding never gives more than its manager
// holds. Just-in-time tokens never manage bindings, so a CI job cannot
// make itself a standing way back in.
func requireBindingAdmin(tok *tokenward.Token, grants tokenward.Grants) error {
	if tok.Kind == tokenward.TokenJIT {
		return tokenward.Errorf(tokenward.EFORBIDDEN, "just-in-time tokens cannot manage bindings")
	}
	if len(grants) == 0 {
		return tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: admin over the binding's grants")
	}
	var missing []string
	for _, g := range grants {
		if g.Action == tokenward.ActionGateway {
			// A gateway grant names a route, not a secret: only admin
			// over everything covers it (as for token management,
			// mayManage), never an admin grant whose name glob happens
			// to match the route's name (admin:*/*/db* and gateway:db-prod).
			if !isTokenAdmin(tok) {
				missing = append(missing, "admin:*/*/* (for "+g.String()+")")
			}
			continue
		}
		if !tok.Grants.Allows(tokenward.ActionAdmin, g.Project, g.Env, g.Name) {
			missing = append(missing, "admin:"+g.Project+"/"+g.Env+"/"+g.Name)
		}
	}
	if len(missing) > 0 {
		return tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: %s (a binding gives at most what its creator administers)", strings.Join(missing, ", "))
	}
	return nil
}

// CreateBinding validates and stores a new binding made by tok.
func (c *Core) CreateBinding(ctx context.Context, tok *tokenward.Token, b *oidc.Binding) (*oidc.Binding, error) {
	o, err := c.oidc()
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, tokenward.Errorf(tokenward.EINVALID, "no binding")
	}
	nb := *b
	// Key files are server configuration: an API caller never names a file
	// for the server to read.
	nb.JWKSFile = ""
	if err := nb.ValidateMaxTTL(o.MaxTTL); err != nil {
		return nil, err
	}
	if err := requireBindingAdmin(tok, nb.Grants); err != nil {
		return nil, err
	}
	now := c.Now().UTC()
	nb.CreatedAt, nb.UpdatedAt, nb.CreatedBy = now, now, tok.ID
	if err := o.Store.CreateBinding(ctx, &nb); err != nil {
		return nil, err
	}
	return &nb, nil
}

// Bindings lists the bindings tok administers.
func (c *Core) Bindings(ctx context.Context, tok *tokenward.Token) ([]*oidc.Binding, error) {
	o, err := c.oidc()
	if err != nil {
		return nil, err
	}
	if tok.Kind == tokenward.TokenJIT {
		return nil, tokenward.Errorf(tokenward.EFORBIDDEN, "just-in-time tokens cannot manage bindings")
	}
	all, err := o.Store.Bindings(ctx)
	if err != nil {
		return nil, err
	}
	return filter(all, func(b *oidc.Binding) bool { return requireBindingAdmin(tok, b.Grants) == nil }), nil
}

// Binding returns one binding tok administers.
func (c *Core) Binding(ctx context.Context, tok *tokenward.Token, name string) (*oidc.Binding, error) {
	o, err := c.oidc()
	if err != nil {
		return nil, err
	}
	if err := oidc.ValidateBindingName(name); err != nil {
		return nil, err
	}
	b, err := o.Store.Binding(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := requireBindingAdmin(tok, b.Grants); err != nil {
		return nil, err
	}
	return b, nil
}

// SetBindingEnabled enables or disables a binding tok administers. A
// disabled binding refuses every exchange; tokens it minted live on.
func (c *Core) SetBindingEnabled(ctx context.Context, tok *tokenward.Token, name string, enabled bool) (*oidc.Binding, error) {
	o, err := c.oidc()
	if err != nil {
		return nil, err
	}
	if _, err := c.Binding(ctx, tok, name); err != nil {
		return nil, err
	}
	if err := o.Store.SetBindingEnabled(ctx, name, enabled, c.Now().UTC()); err != nil {
		return nil, err
	}
	return o.Store.Binding(ctx, name)
}

// DeleteBinding deletes a binding tok administers.
func (c *Core) DeleteBinding(ctx context.Context, tok *tokenward.Token, name string) (*oidc.Binding, error) {
	o, err := c.oidc()
	if err != nil {
		return nil, err
	}
	b, err := c.Binding(ctx, tok, name)
	if err != nil {
		return nil, err
	}
	if err := o.Store.DeleteBinding(ctx, name); err != nil {
		return nil, err
	}
	return b, nil
}

// LoginOIDC exchanges a CI job's identity token for a new just-in-time
// (twj_) token with the grants of the binding it matches (bindingName, or
// the single one that matches when ""), expiring after min(binding TTL,
// MaxTTL), with the job's CI facts recorded on it. A refusal is an
// *oidc.Denial: its message is generic, its Reason (for the audit log only)
// detailed. Neither the identity token nor the minted one is ever logged.
func (c *Core) LoginOIDC(ctx context.Context, bindingName, rawJWT, sourceIP string) (*tokenward.Token, string, error) {
	o, err := c.oidc()
	if err != nil {
		return nil, "", err
	}
	var bindings []*oidc.Binding
	if bindingName != "" {
		// An unknown or malformed name is left to Exchange, which refuses it
		// with the same generic message as every other denial.
		if oidc.ValidateBindingName(bindingName) == nil {
			b, err := o.Store.Binding(ctx, bindingName)
			switch {
			case err == nil:
				bindings = []*oidc.Binding{b}
			case tokenward.ErrorCode(err) != tokenward.ENOTFOUND:
				return nil, "", err
			}
		}
	} else if bindings, err = o.Store.Bindings(ctx); err != nil {
		return nil, "", err
	}
	for _, b := range bindings {
		b.JWKSFile = o.JWKSFiles[b.Issuer]
	}
	res, err := o.Verifier.Exchange(ctx, bindings, bindingName, rawJWT)
	if err != nil {
		var d *oidc.Denial
		if errors.As(err, &d) && d.Replay {
			// A second use of an identity token: someone else may hold it.
			c.Logger.Warn("identity token replay refused", "binding", d.Binding, "source_ip", sourceIP, "repository", d.CI["repository"], "run_id", d.CI["run_id"])
		}
		return nil, "", err
	}
	return c.mintJIT(ctx, o, res)
}

// mintJIT stores a just-in-time token for a successful exchange. It is the
// only way a twj_ token is made (CreateToken refuses kind jit).
func (c *Core) mintJIT(ctx context.Context, o *OIDC, res *oidc.Result) (*tokenward.Token, string, error) {
	now := c.Now().UTC()
	expires := res.ExpiresAt.UTC()
	// Belt and braces over the verifier: never beyond the cap, never
	// without grants.
	if lim := now.Add(o.MaxTTL); expires.IsZero() || expires.After(lim) {
		expires = lim
	}
	if len(res.Grants) == 0 || len(res.Grants) > tokenward.MaxGrants {
		return nil, "", tokenward.Errorf(tokenward.EINTERNAL, "binding %s has %d grants", res.Binding, len(res.Grants))
	}
	name := res.TokenName()
	if err := tokenward.ValidateTokenName(name); err != nil {
		return nil, "", err
	}
	secret, err := tokenward.NewTokenSecret(tokenward.TokenJIT)
	if err != nil {
		return nil, "", err
	}
	t := &tokenward.Token{
		ID: tokenward.NewTokenID(), Name: name, Kind: tokenward.TokenJIT, Owner: "binding:" + res.Binding,
		CreatedBy: "binding:" + res.Binding, Grants: res.Grants, CreatedAt: now, ExpiresAt: expires, CI: res.CI,
	}
	if err := c.Store.CreateToken(ctx, t, tokenward.HashToken(secret)); err != nil {
		return nil, "", err
	}
	c.Logger.Info("just-in-time token minted", slog.String("token_id", t.ID), slog.String("binding", res.Binding),
		slog.String("repository", res.CI["repository"]), slog.String("run_id", res.CI["run_id"]), slog.Time("expires_at", expires))
	return t, secret, nil
}
