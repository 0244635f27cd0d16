package tokenward

import "time"

// Audit outcomes.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
)

// AuditEntry is one audited event: an API request, allowed or denied, or an
// action of the server itself (a rotation step, a scheduled revocation). It
// never holds a secret value, a token or a key; where a value must be
// correlated it holds an HMAC keyed per install.
type AuditEntry struct {
	Seq       int64     `json:"seq"` // position in the chain, from 1
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	TokenID   string    `json:"token_id,omitempty"`
	TokenName string    `json:"token_name,omitempty"`
	Action    string    `json:"action"`             // e.g. "secret.read", "token.create"
	Resource  string    `json:"resource,omitempty"` // e.g. "payments/prod/STRIPE_KEY", "token:tok_..."
	Outcome   string    `json:"outcome"`            // OutcomeAllowed, OutcomeDenied, OutcomeError
	Reason    string    `json:"reason,omitempty"`
	Status    int       `json:"status,omitempty"` // HTTP status, when a request
	SourceIP  string    `json:"source_ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	// CI holds the CI facts of a just-in-time token (repository, run_id...).
	CI map[string]string `json:"ci,omitempty"`
	// Meta holds further non-secret facts (version numbers, HMACs).
	Meta map[string]string `json:"meta,omitempty"`
	// PrevHash and Hash chain the entries: Hash is the SHA-256 of this
	// entry's canonical form, which includes PrevHash (hex).
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}
