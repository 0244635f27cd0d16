package core

import (
	"context"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
)

// CreateTokenInput describes a token to mint.
type CreateTokenInput struct {
	Name   string
	Kind   tokenward.TokenKind // admin or service; jit tokens come from OIDC
	Owner  string
	Grants tokenward.Grants
	// TTL is the lifetime; 0 means as long as the creating token lives
	// (forever if it does not expire).
	TTL time.Duration
	// CI holds CI facts to record (just-in-time tokens).
	CI map[string]string
}

// CreateToken mints a token whose grants and lifetime lie within tok's own.
// It returns the record and the token, which is shown once and stored only
// as a hash.
func (c *Core) CreateToken(ctx context.Context, tok *tokenward.Token, in CreateTokenInput) (*tokenward.Token, string, error) {
	if err := tokenward.ValidateTokenName(in.Name); err != nil {
		return nil, "", err
	}
	if err := tokenward.ValidateTokenOwner(in.Owner); err != nil {
		return nil, "", err
	}
	switch in.Kind {
	case "":
		in.Kind = tokenward.TokenService
	case tokenward.TokenService:
	case tokenward.TokenAdmin:
		if tok.Kind != tokenward.TokenAdmin {
			return nil, "", tokenward.Errorf(tokenward.EFORBIDDEN, "only an admin/personal token can create admin/personal tokens")
		}
	default:
		return nil, "", tokenward.Errorf(tokenward.EINVALID, "token kind must be admin or service")
	}
	if len(in.Grants) == 0 {
		return nil, "", tokenward.Errorf(tokenward.EINVALID, "a token needs at least one grant")
	}
	if len(in.Grants) > tokenward.MaxGrants {
		return nil, "", tokenward.Errorf(tokenward.EINVALID, "too many grants: %d (at most %d)", len(in.Grants), tokenward.MaxGrants)
	}
	if !tok.Grants.Covers(in.Grants) {
		return nil, "", tokenward.Errorf(tokenward.EFORBIDDEN, "a token cannot grant more than it holds: %s", strings.Join(uncovered(tok.Grants, in.Grants), ", "))
	}
	if in.TTL < 0 {
		return nil, "", tokenward.Errorf(tokenward.EINVALID, "ttl must be positive")
	}
	now := c.Now().UTC()
	var expires time.Time
	if in.TTL > 0 {
		expires = now.Add(in.TTL)
	}
	if !tok.ExpiresAt.IsZero() {
		switch {
		case expires.IsZero():
			expires = tok.ExpiresAt
		case expires.After(tok.ExpiresAt):
			return nil, "", tokenward.Errorf(tokenward.EFORBIDDEN, "a token cannot outlive its creator (which expires at %s)", tok.ExpiresAt.Format(time.RFC3339))
		}
	}
	if !storable(expires) {
		return nil, "", tokenward.Errorf(tokenward.EINVALID, "ttl %s is too long: a token must expire by %s", in.TTL, tokenward.MaxTime.Format(time.RFC3339))
	}
	secret, err := tokenward.NewTokenSecret(in.Kind)
	if err != nil {
		return nil, "", err
	}
	t := &tokenward.Token{
		ID: tokenward.NewTokenID(), Name: in.Name, Kind: in.Kind, Owner: in.Owner, CreatedBy: tok.ID,
		Grants: in.Grants, CreatedAt: now, ExpiresAt: expires, CI: in.CI,
	}
	if err := c.Store.CreateToken(ctx, t, tokenward.HashToken(secret)); err != nil {
		return nil, "", err
	}
	return t, secret, nil
}

func uncovered(have, want tokenward.Grants) []string {
	var out []string
	for _, g := range want {
		if !have.Covers(tokenward.Grants{g}) {
			out = append(out, g.String())
		}
	}
	return out
}

// isTokenAdmin reports whether tok administers everything.
func isTokenAdmin(tok *tokenward.Token) bool {
	return tok.Grants.Allows(tokenward.ActionAdmin, "*", "*", "*")
}

// mayManage reports whether tok may see and revoke t: t is tok itself or
// one tok created, or tok holds revoke (or admin) over all of t's grants.
// A gateway grant names a route, not a secret: only admin over everything
// covers it (as only that may grant it), never a revoke grant whose name
// glob happens to match the route's name.
func mayManage(tok, t *tokenward.Token) bool {
	if t.ID == tok.ID || t.CreatedBy == tok.ID || isTokenAdmin(tok) {
		return true
	}
	for _, g := range t.Grants {
		if g.Action == tokenward.ActionGateway || !tok.Grants.Allows(tokenward.ActionRevoke, g.Project, g.Env, g.Name) {
			return false
		}
	}
	return len(t.Grants) > 0
}

// Tokens lists the tokens tok may manage.
func (c *Core) Tokens(ctx context.Context, tok *tokenward.Token) ([]*tokenward.Token, error) {
	all, err := c.Store.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	return filter(all, func(t *tokenward.Token) bool { return mayManage(tok, t) }), nil
}

// findToken looks a token up by id, or by the name of an active token.
func (c *Core) findToken(ctx context.Context, idOrName string) (*tokenward.Token, error) {
	if strings.HasPrefix(idOrName, tokenward.TokenIDPrefix) {
		return c.Store.Token(ctx, idOrName)
	}
	if err := tokenward.ValidateTokenName(idOrName); err != nil {
		return nil, err
	}
	return c.Store.TokenByName(ctx, idOrName)
}

// Token returns one token tok may manage.
func (c *Core) Token(ctx context.Context, tok *tokenward.Token, idOrName string) (*tokenward.Token, error) {
	t, err := c.findToken(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if !mayManage(tok, t) {
		return nil, tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: revoke over every grant of token %s", t.ID)
	}
	return t, nil
}

// RevokeToken revokes a token at once.
func (c *Core) RevokeToken(ctx context.Context, tok *tokenward.Token, idOrName string) (*tokenward.Token, error) {
	t, err := c.Token(ctx, tok, idOrName)
	if err != nil {
		return nil, err
	}
	if err := c.revoke(ctx, t.ID); err != nil {
		return nil, err
	}
	return c.Store.Token(ctx, t.ID)
}

// revoke revokes token id now and drops it from the token cache, so this
// server refuses it at once. Every revocation goes through here.
func (c *Core) revoke(ctx context.Context, id string) error {
	err := c.Store.RevokeToken(ctx, id, c.Now().UTC())
	c.tokens.drop(id)
	if err == nil && c.TokenRevoked != nil {
		c.TokenRevoked(ctx, id)
	}
	return err
}

// DefaultCascadeLimit bounds the tokens one cascading revocation revokes
// besides the token named: far more than any real tree, few enough for one
// request to finish within the HTTP server's write timeout.
const DefaultCascadeLimit = 10_000

// cascadePasses bounds the walks of one cascading revocation. A second walk
// finds a token a descendant minted while the first was being revoked (on
// another server that had not yet seen the revocation); revoked tokens
// mint nothing, so it comes up empty at once unless something raced.
const cascadePasses = 4

// RevokeTokenCascade revokes a token, as RevokeToken does, and then every
// token it created, transitively, that is not revoked yet: each through
// revoke, as a single revocation. The caller needs only to be allowed to
// revoke the token named: a token can give no more than it holds and live
// no longer than its creator, so its descendants hold a subset of its
// grants (docs/security.md).
//
// It returns the token as stored and the ids it revoked: the token's first
// when it was not revoked yet, then its descendants, nearest first. Tokens
// minted by an OIDC binding (created_by binding:NAME) are nobody's
// descendants; a rotation's successor is its predecessor's (the old token
// mints it).
//
// More than the limit (DefaultCascadeLimit) of descendants to revoke is an
// EINVALID error before anything is revoked. A failure midway returns the
// error with the token (once it is found and may be revoked) and the ids
// revoked so far, for the caller's audit entries: each revocation is
// committed on its own, and calling again finishes the job, as revoking a
// revoked token succeeds.
func (c *Core) RevokeTokenCascade(ctx context.Context, tok *tokenward.Token, idOrName string) (*tokenward.Token, []string, error) {
	t, err := c.Token(ctx, tok, idOrName)
	if err != nil {
		return nil, nil, err
	}
	limit := c.cascadeLimit
	if limit <= 0 {
		limit = DefaultCascadeLimit
	}
	descendants, err := c.activeDescendants(ctx, t.ID, limit)
	if err != nil {
		return nil, nil, err
	}
	if len(descendants) > limit {
		return nil, nil, tokenward.Errorf(tokenward.EINVALID, "token %s has more than %d active descendants: nothing was revoked; revoke its subtrees with cascade first", t.ID, limit)
	}
	// The named token goes first, as a single revocation would: in an
	// incident it is the one known to be out.
	var revoked []string
	if t.RevokedAt.IsZero() {
		revoked = append(revoked, t.ID)
	}
	if err := c.revoke(ctx, t.ID); err != nil {
		return t, nil, err
	}
	count := 0
	for pass := 0; len(descendants) > 0; pass++ {
		if count += len(descendants); count > limit {
			return t, revoked, tokenward.Errorf(tokenward.EINVALID, "token %s has more than %d active descendants (tokens were minted during the revocation): %d revoked, the rest left active", t.ID, limit, len(revoked))
		}
		for _, id := range descendants {
			if err := c.revoke(ctx, id); err != nil {
				return t, revoked, err
			}
			revoked = append(revoked, id)
		}
		if pass+1 == cascadePasses {
			break
		}
		if descendants, err = c.activeDescendants(ctx, t.ID, limit); err != nil {
			return t, revoked, err
		}
	}
	stored, err := c.Store.Token(ctx, t.ID)
	if err != nil {
		return t, revoked, err
	}
	return stored, revoked, nil
}

// activeDescendants returns the ids of the tokens created by root,
// transitively, that are not revoked, nearest first; it stops at limit+1
// of them. The walk goes through revoked and expired tokens (a revoked
// child's children may be active), and keeps a visited set: creators form
// a forest, but a record written outside the API could make a cycle.
func (c *Core) activeDescendants(ctx context.Context, root string, limit int) ([]string, error) {
	all, err := c.Store.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	children := make(map[string][]*tokenward.Token)
	for _, t := range all {
		if t.CreatedBy != "" {
			children[t.CreatedBy] = append(children[t.CreatedBy], t)
		}
	}
	var out []string
	visited := map[string]bool{root: true}
	for queue := []string{root}; len(queue) > 0; queue = queue[1:] {
		for _, t := range children[queue[0]] {
			if visited[t.ID] {
				continue
			}
			visited[t.ID] = true
			queue = append(queue, t.ID)
			if !t.RevokedAt.IsZero() {
				continue
			}
			if out = append(out, t.ID); len(out) > limit {
				return out, nil
			}
		}
	}
	return out, nil
}
