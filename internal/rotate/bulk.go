package rotate

import (
	"context"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// Selector picks the secrets of a bulk rotation. Set exactly one of All,
// Owner, Tag or Scope.
type Selector struct {
	All   bool
	Owner string
	Tag   string
	// Scope is a glob over project/env/name, e.g. "payments/prod/*"
	// (path.Match syntax, per segment).
	Scope string
}

// Validate checks that exactly one criterion is set and the glob parses.
func (s Selector) Validate() error {
	n := 0
	for _, set := range []bool{s.All, s.Owner != "", s.Tag != "", s.Scope != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errInvalid("bulk rotation: give exactly one of all, owner, tag or scope")
	}
	if s.Scope != "" {
		if _, err := path.Match(s.Scope, ""); err != nil {
			return errInvalid("bulk rotation: scope %q is not a valid glob", tokenward.Printable(s.Scope))
		}
	}
	return nil
}

// Match reports whether sec is selected.
func (s Selector) Match(sec *tokenward.Secret) bool {
	switch {
	case s.All:
		return true
	case s.Owner != "":
		return sec.Owner == s.Owner
	case s.Tag != "":
		return slices.Contains(sec.Tags, s.Tag)
	case s.Scope != "":
		ok, _ := path.Match(s.Scope, sec.Path())
		return ok
	}
	return false
}

// Catalog lists secrets' metadata for selection.
type Catalog interface {
	AllSecrets(ctx context.Context) ([]*tokenward.Secret, error)
}

// BulkItem is one secret's line in a plan or report.
type BulkItem struct {
	Secret  string `json:"secret"`
	Rotator string `json:"rotator,omitempty"`
	// Action in a plan: "rotate" or "skip"; Status in a report: "rotated",
	// "skipped" or "failed".
	Action     string `json:"action,omitempty"`
	Status     string `json:"status,omitempty"`
	Reason     string `json:"reason,omitempty"` // why skipped or failed; never a value
	RotationID string `json:"rotation_id,omitempty"`
}

// Bulk rotates many secrets at once: the answer to "someone left".
type Bulk struct {
	Machine *Machine
	Catalog Catalog
	// Concurrency bounds rotations run at once (default 4).
	Concurrency int
}

// Plan lists what Run would do, by path, without changing anything.
func (b *Bulk) Plan(ctx context.Context, sel Selector) ([]BulkItem, error) {
	if err := sel.Validate(); err != nil {
		return nil, err
	}
	secrets, err := b.Catalog.AllSecrets(ctx)
	if err != nil {
		return nil, err
	}
	var plan []BulkItem
	for _, sec := range secrets {
		if !sel.Match(sec) {
			continue
		}
		it := BulkItem{Secret: sec.Path(), Action: "rotate"}
		p, err := b.Machine.Store.Policy(ctx, sec.Path())
		switch {
		case tokenward.ErrorCode(err) == tokenward.ENOTFOUND:
			it.Action, it.Reason = "skip", "no rotation policy"
		case err != nil:
			return nil, err
		default:
			it.Rotator = p.Rotator
		}
		plan = append(plan, it)
	}
	slices.SortFunc(plan, func(a, b BulkItem) int {
		if a.Secret < b.Secret {
			return -1
		}
		if a.Secret > b.Secret {
			return 1
		}
		return 0
	})
	return plan, nil
}

// Run rotates every selected secret now (reason "bulk: <reason>") with
// bounded concurrency and reports each, in plan order. One secret's failure
// never stops the others; its CURRENT stays as it was.
func (b *Bulk) Run(ctx context.Context, sel Selector, reason string) ([]BulkItem, error) {
	plan, err := b.Plan(ctx, sel)
	if err != nil {
		return nil, err
	}
	report := make([]BulkItem, len(plan))
	s := &Scheduler{Machine: b.Machine, Concurrency: b.Concurrency}
	var mu sync.Mutex
	s.each(ctx, len(plan), func(i int) {
		it := plan[i]
		it.Action = ""
		if plan[i].Action == "skip" {
			it.Status = "skipped"
		} else {
			r, err := b.Machine.RotateNow(ctx, it.Secret, "bulk: "+reason)
			if r != nil {
				it.RotationID = r.ID
			}
			switch {
			case err != nil:
				it.Status, it.Reason = "failed", tokenward.ErrorMessage(err)
				if tokenward.ErrorCode(err) == tokenward.EINTERNAL {
					// step errors are built to hold no value
					it.Reason = err.Error()
				}
				if r != nil && r.Step.InFlight() {
					it.Reason += "; retrying at " + r.NextAt.Format(time.RFC3339)
				}
			case r.Step == StepFailed:
				it.Status, it.Reason = "failed", r.Error
			default:
				it.Status = "rotated"
			}
		}
		mu.Lock()
		report[i] = it
		mu.Unlock()
	})
	for i := range report {
		if report[i].Status == "" {
			report[i] = BulkItem{Secret: plan[i].Secret, Rotator: plan[i].Rotator, Status: "failed", Reason: "not run: " + ctx.Err().Error()}
		}
	}
	return report, nil
}
