package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/rotate"
)

// A bulk rotation runs in the background: an incident rotation of hundreds
// of secrets outlasts any HTTP write timeout, and a client that lost the
// answer would not know what happened. POST /v1/rotation/bulk starts it and
// answers 202 with an id; GET /v1/rotation/bulk/{id} reports it, waiting
// up to ?wait= for the end. Jobs live in the server's memory: each rotation
// they run is persisted by the rotation machine as always, but the report of
// a job does not survive a restart.

// Bounds of the job table.
const (
	maxBulkJobs = 100
	bulkJobKeep = time.Hour // a finished job stays readable this long
	maxBulkWait = 30 * time.Second
)

// bulkJob is a job as the API shows it (api.BulkJob) and who may see it.
type bulkJob struct {
	api.BulkJob[rotate.BulkItem]
	owner string        // the token that started it
	done  chan struct{} // closed when it ends
}

type bulkJobs struct {
	mu   sync.Mutex
	jobs map[string]*bulkJob
}

// start registers a job for tok, refusing when the table is full of
// running jobs.
func (b *bulkJobs) start(tok *tokenward.Token, planned int, now time.Time) (*bulkJob, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.jobs == nil {
		b.jobs = map[string]*bulkJob{}
	}
	for id, j := range b.jobs {
		if j.Status != api.BulkRunning && now.Sub(j.FinishedAt) > bulkJobKeep {
			delete(b.jobs, id)
		}
	}
	if len(b.jobs) >= maxBulkJobs {
		// Forget the oldest finished job, if any.
		var oldest *bulkJob
		for _, j := range b.jobs {
			if j.Status != api.BulkRunning && (oldest == nil || j.FinishedAt.Before(oldest.FinishedAt)) {
				oldest = j
			}
		}
		if oldest == nil {
			return nil, tokenward.Errorf(tokenward.ECONFLICT, "%d bulk rotations are running; wait for one to finish", maxBulkJobs)
		}
		delete(b.jobs, oldest.ID)
	}
	var raw [12]byte
	rand.Read(raw[:])
	j := &bulkJob{BulkJob: api.BulkJob[rotate.BulkItem]{ID: "bulk_" + hex.EncodeToString(raw[:]), Status: api.BulkRunning,
		Planned: planned, StartedAt: now, Items: []rotate.BulkItem{}}, owner: tok.ID, done: make(chan struct{})}
	b.jobs[j.ID] = j
	return j, nil
}

// finish records a job's outcome.
func (b *bulkJobs) finish(j *bulkJob, items []rotate.BulkItem, err error, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j.FinishedAt = now
	if items != nil {
		j.Items = items
	}
	if err != nil {
		j.Status, j.Error = api.BulkFailed, tokenward.ErrorMessage(err)
	} else {
		j.Status = api.BulkFinished
	}
	close(j.done)
}

// view returns a copy of job id as tok may see it: its own jobs, or any
// with admin on everything. Others' jobs are not found (not forbidden:
// their ids are nobody else's business).
func (b *bulkJobs) view(tok *tokenward.Token, id string) (api.BulkJob[rotate.BulkItem], <-chan struct{}, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[id]
	if !ok || (j.owner != tok.ID && !tok.Grants.Allows(tokenward.ActionAdmin, "*", "*", "*")) {
		return api.BulkJob[rotate.BulkItem]{}, nil, tokenward.Errorf(tokenward.ENOTFOUND, "bulk rotation %s not found", tokenward.Printable(id))
	}
	v := j.BulkJob
	v.Items = slices.Clone(j.Items)
	return v, j.done, nil
}

// runBulk starts the rotation of sel in the background after planning it
// (which validates the request and the token's reach) and answers 202.
func (s *Server) runBulk(c *call, sel rotate.Selector, concurrency int, reason string) (int, any, error) {
	plan, err := s.Core.BulkRotate(c.r.Context(), c.tok, sel, true, concurrency, reason)
	if err != nil {
		return 0, nil, err
	}
	planned := 0
	for _, it := range plan {
		if it.Action == "rotate" {
			planned++
		}
	}
	now := time.Now().UTC()
	job, err := s.bulk.start(c.tok, planned, now)
	if err != nil {
		return 0, nil, err
	}
	tok := c.tok
	// The job outlives the request: not its cancellation.
	ctx := context.WithoutCancel(c.r.Context())
	go func() {
		items, err := s.Core.BulkRotate(ctx, tok, sel, false, concurrency, reason)
		if err != nil {
			s.Logger.Error("bulk rotation failed", "bulk_id", job.ID, "err", err)
		}
		s.bulk.finish(job, items, err, time.Now().UTC())
	}()
	c.meta = map[string]string{"dry_run": "false", "bulk_id": job.ID, "planned": strconv.Itoa(planned)}
	v, _, _ := s.bulk.view(tok, job.ID)
	return http.StatusAccepted, &v, nil
}

// bulkStatus reports a bulk rotation, waiting up to ?wait= for its end.
func (s *Server) bulkStatus(c *call) (int, any, error) {
	id := c.r.PathValue("id")
	var wait time.Duration
	if w := c.r.URL.Query().Get("wait"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil || d < 0 || d > maxBulkWait {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "wait must be a duration from 0s to %s", maxBulkWait)
		}
		wait = d
	}
	c.resource = "bulk:" + tokenward.Printable(id)
	v, done, err := s.bulk.view(c.tok, id)
	if err != nil {
		return 0, nil, err
	}
	if v.Status == api.BulkRunning && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		case <-c.r.Context().Done():
		}
		if v, _, err = s.bulk.view(c.tok, id); err != nil {
			return 0, nil, err
		}
	}
	c.meta = map[string]string{"status": v.Status}
	return http.StatusOK, &v, nil
}
