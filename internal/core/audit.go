package core

import (
	"errors"
	"strings"

	"github.com/tokenward/tokenward"
)

// deniedTokenError is an authentication failure for a token the store
// knows (revoked or expired). It carries who the token was (id, name, kind,
// CI facts), never the token, so the audit entry of the refused request
// names it: the use of a revoked or expired token is a leak signal.
type deniedTokenError struct {
	err *tokenward.Error
	who tokenward.Token
}

func (e *deniedTokenError) Error() string { return e.err.Error() }
func (e *deniedTokenError) Unwrap() error { return e.err }

func denyToken(tok *tokenward.Token, err *tokenward.Error) error {
	return &deniedTokenError{err: err, who: tokenward.Token{ID: tok.ID, Name: tok.Name, Kind: tok.Kind, CI: tok.CI}}
}

// PresentedToken returns who the known token an Authenticate error refused
// (revoked or expired) was: a record with only ID, Name, Kind and CI set
// (no grants: it authorizes nothing). ok is false for any other error.
func PresentedToken(err error) (who *tokenward.Token, ok bool) {
	var d *deniedTokenError
	if errors.As(err, &d) {
		w := d.who
		return &w, true
	}
	return nil, false
}

// hasAudit reports whether tok holds any audit (or admin) grant.
func hasAudit(tok *tokenward.Token) bool {
	for _, g := range tok.Grants {
		if g.Action == tokenward.ActionAudit || g.Action == tokenward.ActionAdmin {
			return true
		}
	}
	return false
}

// RequireAudit allows reading the whole audit trail (export, verify): it
// needs audit:*/*/* (or admin:*/*/*).
func (c *Core) RequireAudit(tok *tokenward.Token) error {
	return require(tok, tokenward.ActionAudit, "*", "*", "*")
}

// AuditFilter returns which audit entries tok may read: with audit:*/*/*
// every entry (filter nil); with narrower audit grants only entries about
// secrets, environments or projects the grants cover wholly. Entries about
// anything else (tokens, keys, refused requests with no resource) need
// audit:*/*/*. EFORBIDDEN when tok holds no audit grant at all.
func (c *Core) AuditFilter(tok *tokenward.Token) (func(*tokenward.AuditEntry) bool, error) {
	if tok.Grants.Allows(tokenward.ActionAudit, "*", "*", "*") {
		return nil, nil
	}
	if !hasAudit(tok) {
		return nil, forbidden(tokenward.ActionAudit, "*/*/*")
	}
	return func(e *tokenward.AuditEntry) bool { return auditVisible(tok, e.Resource) }, nil
}

func auditVisible(tok *tokenward.Token, resource string) bool {
	if resource == "" || strings.Contains(resource, ":") || strings.Contains(resource, "*") {
		return false
	}
	parts := strings.Split(resource, "/")
	for len(parts) < 3 {
		parts = append(parts, "*")
	}
	if len(parts) != 3 {
		return false
	}
	want := tokenward.Grant{Action: tokenward.ActionAudit, Project: parts[0], Env: parts[1], Name: parts[2]}
	for _, g := range tok.Grants {
		if g.Covers(want) {
			return true
		}
	}
	return false
}
