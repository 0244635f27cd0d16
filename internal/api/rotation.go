package api

import "time"

// RotationPolicy is a rotation policy as the API shows it.
type RotationPolicy struct {
	Secret string `json:"secret"` // project/env/NAME
	RotationSettings
	LastAt time.Time `json:"last_at,omitzero"`
	NextAt time.Time `json:"next_at,omitzero"`
}

// RotationSettings is what a rotation policy sets, the body of PUT
// /v1/rotation/policies/{path}: durations in the policy form (30d, 2w,
// 12h, 90m). Config never holds a secret; it names stored secrets by path
// (dsn_secret, key_secret).
type RotationSettings struct {
	Every    string            `json:"every,omitempty"`
	Cron     string            `json:"cron,omitempty"`
	Jitter   string            `json:"jitter,omitempty"`
	Grace    string            `json:"grace,omitempty"`
	Rotator  string            `json:"rotator"`
	Config   map[string]string `json:"config,omitempty"`
	Disabled bool              `json:"disabled,omitempty"`
}

// RotationPolicyList is the answer of GET /v1/rotation/policies.
type RotationPolicyList struct {
	Policies []*RotationPolicy `json:"policies"`
}

// DisableRotationPolicyRequest is the optional body of POST
// /v1/rotation/policies/{path}/disable; enable resumes the schedule.
type DisableRotationPolicyRequest struct {
	Enable bool `json:"enable,omitempty"`
}

// BulkRotateRequest is the body of POST /v1/rotation/bulk: exactly one of
// all, owner, tag or scope.
type BulkRotateRequest struct {
	All         bool   `json:"all,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Tag         string `json:"tag,omitempty"`
	Scope       string `json:"scope,omitempty"`
	DryRun      bool   `json:"dry_run,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// BulkRotateResponse is the plan of a dry run (a run answers a BulkJob).
// Item is rotate.BulkItem.
type BulkRotateResponse[Item any] struct {
	DryRun bool   `json:"dry_run"`
	Items  []Item `json:"items"`
}

// Statuses of a BulkJob.
const (
	BulkRunning  = "running"
	BulkFinished = "finished" // see items
	BulkFailed   = "failed"   // see error
	// BulkAbandoned: the server running it stopped reporting (it died);
	// the rotations it started are persisted and resumed by the leader.
	BulkAbandoned = "abandoned"
)

// BulkJob is the answer of POST /v1/rotation/bulk (a run, which goes on in
// the server's background) and of GET /v1/rotation/bulk/{id}. Item is
// rotate.BulkItem.
type BulkJob[Item any] struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Planned    int       `json:"planned"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Items      []Item    `json:"items"`
	Error      string    `json:"error,omitempty"`
}

// RotationStatusResponse is the answer of GET /v1/rotation/status: the
// in-flight rotations and recent failures. Rotation is *rotate.Rotation.
type RotationStatusResponse[Rotation any] struct {
	InFlight []Rotation `json:"in_flight"`
	Failed   []Rotation `json:"failed"`
}

// RotationHistory is the answer of GET /v1/rotation/history/{path},
// newest first. Rotation is *rotate.Rotation.
type RotationHistory[Rotation any] struct {
	Rotations []Rotation `json:"rotations"`
}
