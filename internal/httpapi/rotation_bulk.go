package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
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
// up to ?wait= for the end. Jobs live in the store (rotate.BulkJobStore),
// so any server sharing it reports them, and a restart keeps them. The
// server running a job beats its heart into the record; a running job whose
// heart stopped (its server died) reads as abandoned: the rotations it
// started are persisted and resumed by the leader as always.

// Bounds and pace of bulk jobs.
const (
	maxBulkJobs      = 100              // running at once, across every server
	bulkJobKeep      = time.Hour        // a finished job stays readable this long
	maxBulkWait      = 30 * time.Second // longest ?wait=
	bulkHeartbeat    = 30 * time.Second // a running job's record is touched this often
	bulkAbandonAfter = 2 * time.Minute  // a running job not touched this long is abandoned
	bulkPoll         = 200 * time.Millisecond
)

// bulkJobs tells a waiting request that a job this server runs has ended,
// sooner than its next poll of the store.
type bulkJobs struct {
	mu   sync.Mutex
	done map[string]chan struct{}
}

func (b *bulkJobs) started(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done == nil {
		b.done = map[string]chan struct{}{}
	}
	b.done[id] = make(chan struct{})
}

func (b *bulkJobs) ended(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.done[id])
	delete(b.done, id)
}

// ending returns a channel closed when job id ends, if this server runs it.
func (b *bulkJobs) ending(id string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done[id] // nil: not ours, or over; a nil channel never fires
}

// bulkView is job j as the API shows it at now.
func bulkView(j *rotate.BulkJob, now time.Time) *api.BulkJob[rotate.BulkItem] {
	v := &api.BulkJob[rotate.BulkItem]{ID: j.ID, Status: j.Status, Planned: j.Planned, StartedAt: j.StartedAt,
		FinishedAt: j.FinishedAt, Items: j.Items, Error: j.Error}
	if v.Status == api.BulkRunning && now.Sub(j.UpdatedAt) > bulkAbandonAfter {
		v.Status = api.BulkAbandoned
	}
	if v.Items == nil {
		v.Items = []rotate.BulkItem{}
	}
	return v
}

// readBulk returns job id as tok may see it: its own jobs, or any with
// admin on everything. Others' jobs are not found (not forbidden: their
// ids are nobody else's business).
func (s *Server) readBulk(ctx context.Context, store rotate.BulkJobStore, tok *tokenward.Token, id string) (*api.BulkJob[rotate.BulkItem], error) {
	j, err := store.BulkJob(ctx, id)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND ||
		(err == nil && j.Owner != tok.ID && !tok.Grants.Allows(tokenward.ActionAdmin, "*", "*", "*")) {
		return nil, tokenward.Errorf(tokenward.ENOTFOUND, "bulk rotation %s not found", tokenward.Printable(id))
	}
	if err != nil {
		return nil, err
	}
	return bulkView(j, s.Core.Now().UTC()), nil
}

// runBulk starts the rotation of sel in the background after planning it
// (which validates the request and the token's reach) and answers 202.
func (s *Server) runBulk(c *call, sel rotate.Selector, concurrency int, reason string) (int, any, error) {
	store, err := s.Core.BulkJobs()
	if err != nil {
		return 0, nil, err
	}
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
	ctx := c.r.Context()
	now := s.Core.Now().UTC()
	if _, err := store.PruneBulkJobs(ctx, now.Add(-bulkJobKeep)); err != nil {
		return 0, nil, err
	}
	var raw [12]byte
	rand.Read(raw[:])
	job := &rotate.BulkJob{ID: "bulk_" + hex.EncodeToString(raw[:]), Owner: c.tok.ID, Status: api.BulkRunning,
		Planned: planned, StartedAt: now, UpdatedAt: now, Items: []rotate.BulkItem{}}
	if err := store.CreateBulkJob(ctx, job, maxBulkJobs, now.Add(-bulkAbandonAfter)); err != nil {
		return 0, nil, err
	}
	s.bulk.started(job.ID)
	// The answer is made before the job starts: from then on the job's
	// goroutine alone touches job.
	view := bulkView(job, now)
	c.meta = map[string]string{"dry_run": "false", "bulk_id": job.ID, "planned": strconv.Itoa(planned)}
	// The job outlives the request: not its cancellation.
	go s.bulkJob(context.WithoutCancel(ctx), store, job, c.tok, sel, concurrency, reason)
	return http.StatusAccepted, view, nil
}

// bulkJob runs job, beating its heart into the store until it ends, then
// records the outcome. Heartbeats and the outcome are written from here
// alone, so a late heartbeat never turns a finished job back to running.
func (s *Server) bulkJob(ctx context.Context, store rotate.BulkJobStore, job *rotate.BulkJob, tok *tokenward.Token,
	sel rotate.Selector, concurrency int, reason string) {
	defer s.bulk.ended(job.ID)
	type result struct {
		items []rotate.BulkItem
		err   error
	}
	res := make(chan result, 1)
	go func() {
		items, err := s.Core.BulkRotate(ctx, tok, sel, false, concurrency, reason)
		res <- result{items, err}
	}()
	beat := time.NewTicker(bulkHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-beat.C:
			job.UpdatedAt = s.Core.Now().UTC()
			if err := store.UpdateBulkJob(ctx, job); err != nil {
				s.Logger.Warn("bulk rotation heartbeat", "bulk_id", job.ID, "err", tokenward.ErrorMessage(err))
			}
		case r := <-res:
			now := s.Core.Now().UTC()
			job.UpdatedAt, job.FinishedAt = now, now
			if r.items != nil {
				job.Items = r.items
			}
			if r.err != nil {
				s.Logger.Error("bulk rotation failed", "bulk_id", job.ID, "err", r.err)
				job.Status, job.Error = api.BulkFailed, tokenward.ErrorMessage(r.err)
			} else {
				job.Status = api.BulkFinished
			}
			if err := store.UpdateBulkJob(ctx, job); err != nil {
				// The record stays running and reads as abandoned.
				s.Logger.Error("bulk rotation report not stored", "bulk_id", job.ID, "err", tokenward.ErrorMessage(err))
			}
			return
		}
	}
}

// bulkStatus reports a bulk rotation, waiting up to ?wait= for its end: it
// polls the store, since another server may run the job.
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
	store, err := s.Core.BulkJobs()
	if err != nil {
		return 0, nil, err
	}
	ctx := c.r.Context()
	v, err := s.readBulk(ctx, store, c.tok, id)
	if err != nil {
		return 0, nil, err
	}
	if v.Status == api.BulkRunning && wait > 0 {
		deadline := time.NewTimer(wait)
		defer deadline.Stop()
		poll := time.NewTicker(bulkPoll)
		defer poll.Stop()
		ending := s.bulk.ending(id)
		for over := false; v.Status == api.BulkRunning && !over; {
			select {
			case <-ending:
				ending = nil
			case <-poll.C:
			case <-deadline.C:
				over = true // one last look
			case <-ctx.Done():
				return 0, nil, ctx.Err() // the client left
			}
			if v, err = s.readBulk(ctx, store, c.tok, id); err != nil {
				return 0, nil, err
			}
		}
	}
	c.meta = map[string]string{"status": v.Status}
	return http.StatusOK, v, nil
}
