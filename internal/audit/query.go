package audit

import (
	"context"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
)

// MaxQueryLimit bounds the entries one search returns.
const MaxQueryLimit = 1000

// Query selects audit entries. Zero fields match everything.
type Query struct {
	// Token matches the entry's token id or token name.
	Token string `json:"token,omitempty"`
	// Resource is a glob in which '*' matches any run of characters
	// ("payments/prod/*", "token:*").
	Resource string `json:"resource,omitempty"`
	// Action is an action, or a prefix glob ending in '*' ("secret.*").
	Action  string    `json:"action,omitempty"`
	Outcome string    `json:"outcome,omitempty"`
	Since   time.Time `json:"since,omitzero"` // entries at or after
	Until   time.Time `json:"until,omitzero"` // entries before
	// After selects entries with a seq above it (for tailing).
	After int64 `json:"after,omitempty"`
	// Before selects entries with a seq below it (paging back newest
	// first: entries sharing a time are neither skipped nor repeated, as
	// they would be with Until); 0 means no bound.
	Before int64 `json:"before,omitempty"`
	// Newest returns the newest matches first (search); otherwise the
	// oldest first (tail, export).
	Newest bool `json:"newest,omitempty"`
	// Limit bounds the result; 0 or more than MaxQueryLimit means
	// MaxQueryLimit.
	Limit int `json:"limit,omitempty"`
}

// Searcher is a store that answers queries (the SQL stores; see
// internal/storetest RunAudit for the contract).
type Searcher interface {
	// SearchAudit returns the entries matching q, ordered by seq.
	SearchAudit(ctx context.Context, q Query) ([]*tokenward.AuditEntry, error)
}

// Validate checks a query from outside.
func (q *Query) Validate() error {
	switch q.Outcome {
	case "", tokenward.OutcomeAllowed, tokenward.OutcomeDenied, tokenward.OutcomeError:
	default:
		return tokenward.Errorf(tokenward.EINVALID, "outcome must be allowed, denied or error")
	}
	if q.Limit < 0 || q.After < 0 || q.Before < 0 {
		return tokenward.Errorf(tokenward.EINVALID, "limit, after and before must not be negative")
	}
	if i := strings.IndexByte(q.Action, '*'); i >= 0 && i != len(q.Action)-1 {
		return tokenward.Errorf(tokenward.EINVALID, "action glob may hold '*' only at its end")
	}
	for field, v := range map[string]string{"token": q.Token, "resource": q.Resource, "action": q.Action} {
		if len(v) > 512 {
			return tokenward.Errorf(tokenward.EINVALID, "%s is longer than 512 bytes", field)
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return tokenward.Errorf(tokenward.EINVALID, "since must be before until")
	}
	return nil
}

// EffectiveLimit is the limit a store applies.
func (q *Query) EffectiveLimit() int {
	if q.Limit <= 0 || q.Limit > MaxQueryLimit {
		return MaxQueryLimit
	}
	return q.Limit
}

// Match reports whether e matches q, apart from After, Before and Limit.
// Stores may filter in their query language, but must agree with Match.
func (q *Query) Match(e *tokenward.AuditEntry) bool {
	switch {
	case q.Token != "" && e.TokenID != q.Token && e.TokenName != q.Token:
		return false
	case q.Outcome != "" && e.Outcome != q.Outcome:
		return false
	case !q.Since.IsZero() && e.Time.Before(q.Since):
		return false
	case !q.Until.IsZero() && !e.Time.Before(q.Until):
		return false
	case q.Action != "" && !globMatch(q.Action, e.Action):
		return false
	case q.Resource != "" && !globMatch(q.Resource, e.Resource):
		return false
	}
	return true
}

// globMatch matches s against a pattern whose only wildcard is '*', any run
// of characters.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
