package rotate

import (
	"context"
	"time"
)

// BulkJob is the record of a bulk rotation run in the background: what
// GET /v1/rotation/bulk/{id} reports, from whichever server it asks. It
// never holds a value: items carry secret paths, statuses and reasons, and
// Error is an error's message as the API shows it.
type BulkJob struct {
	ID      string
	Owner   string // the id of the token that started it
	Status  string // api.BulkRunning, BulkFinished or BulkFailed
	Planned int
	// UpdatedAt is the heartbeat of the server running the job: a running
	// job not updated for a while is one whose server died.
	StartedAt, UpdatedAt, FinishedAt time.Time
	Items                            []BulkItem
	Error                            string
}

// BulkJobStore keeps bulk rotation jobs where every server sharing the
// store reads them. Errors are *tokenward.Error.
type BulkJobStore interface {
	// CreateBulkJob stores a new job, running; ECONFLICT when max jobs
	// are running already. Running jobs not updated since live (their
	// server died) do not count.
	CreateBulkJob(ctx context.Context, j *BulkJob, max int, live time.Time) error
	// UpdateBulkJob stores j's status, items, error and times (not its
	// owner, plan or start); ENOTFOUND if it is gone.
	UpdateBulkJob(ctx context.Context, j *BulkJob) error
	// BulkJob returns one job by id; ENOTFOUND if there is none.
	BulkJob(ctx context.Context, id string) (*BulkJob, error)
	// PruneBulkJobs deletes the jobs last updated before before: finished
	// ones kept long enough, and abandoned ones. It returns how many.
	PruneBulkJobs(ctx context.Context, before time.Time) (int, error)
}
