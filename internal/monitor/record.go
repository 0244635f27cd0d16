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
