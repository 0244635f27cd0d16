package api

import "github.com/tokenward/tokenward"

// AuditEntriesResponse is the answer of GET /v1/audit/entries.
type AuditEntriesResponse struct {
	Entries []*tokenward.AuditEntry `json:"entries"`
	// Next is the seq to pass as ?after= to continue (tailing): the highest
	// seq looked at, which may be past the last entry returned when
	// entries were filtered out.
	Next int64 `json:"next"`
}

// AuditVerdict is what GET /v1/audit/verify adds beside the fields of the
// audit.Report it answers with (both embedded in one object).
type AuditVerdict struct {
	OK    bool   `json:"ok"`
	KeyID string `json:"key_id"`
}

// AuditKeyResponse is the answer of GET /v1/audit/key.
type AuditKeyResponse struct {
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"` // PEM, PKIX
}
