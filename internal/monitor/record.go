package monitor

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Record is a persisted anomaly: the anomaly with its id and its
// acknowledgement. Stores keep records; the report shows the open ones.
type Record struct {
	ID string `json:"id"` // "anm_" + 16 hex
	Anomaly
	AckedAt time.Time `json:"acked_at,omitzero"`
	AckedBy string    `json:"acked_by,omitempty"` // token id
}

// Open reports whether the anomaly is not acknowledged yet.
func (r *Record) Open() bool { return r.AckedAt.IsZero() }

// NewRecordID returns a fresh anomaly id.
func NewRecordID() string {
	var b [8]byte
	rand.Read(b[:])
	return "anm_" + hex.EncodeToString(b[:])
}

// Archive is a retired environment whose secrets are archived: hidden from
// reads and lists, restorable until PurgeAt, then purged.
type Archive struct {
	Project    string    `json:"project"`
	Env        string    `json:"environment"`
	Secrets    int       `json:"secrets"`
	ArchivedAt time.Time `json:"archived_at"`
	ArchivedBy string    `json:"archived_by,omitempty"` // token id
	PurgeAt    time.Time `json:"purge_at"`
}

// RetirePlan is what retiring a project or environment does.
type RetirePlan struct {
	Scope    string       `json:"scope"` // project or project/env
	Envs     []string     `json:"environments"`
	Revoke   []PlanToken  `json:"revoke_tokens"`
	Narrow   []PlanNarrow `json:"narrow_tokens"`
	Secrets  []string     `json:"archive_secrets"`
	Disable  []string     `json:"disable"` // bindings, rotation policies (from RetireHooks)
	PurgeAt  time.Time    `json:"purge_at"`
	DryRun   bool         `json:"dry_run"`
	Done     bool         `json:"done"`
	Archives []Archive    `json:"archives,omitempty"`
}

// PlanToken names a token.
type PlanToken struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Owner string `json:"owner,omitempty"`
}

// PlanNarrow is a token that keeps some grants and loses the others.
type PlanNarrow struct {
	PlanToken
	Keep []string `json:"keep"`
	Drop []string `json:"drop"`
}
