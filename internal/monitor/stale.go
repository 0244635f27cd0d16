package monitor

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// StalePolicy says what happens to stale tokens after their owner is told.
type StalePolicy struct {
	NoticePeriod time.Duration // default 14 days
	Revoke       bool          // revoke once the notice period passes unanswered
}

// StaleStep is what to do now about one token.
type StaleStep string

// Stale-token steps.
const (
	StaleNotify StaleStep = "notify" // tell the owner; record the notice time
	StaleRevoke StaleStep = "revoke" // notice period over, still unused: revoke
	StaleClear  StaleStep = "clear"  // used again since the notice (or no longer stale): forget the notice
)

// StaleAction is one step of the stale-token plan.
type StaleAction struct {
	Step    StaleStep `json:"step"`
	TokenID string    `json:"token_id"`
	Name    string    `json:"name,omitempty"`
	Owner   string    `json:"owner,omitempty"`
	Why     string    `json:"why"`
}

// PlanStale turns a report's stale tokens and the notices already sent
// (token id -> when) into the steps to take at now. It is pure: the caller
// performs the steps (alert, revoke with an audit entry) and stores notices.
// A token used after its notice is cleared, never revoked.
func PlanStale(r *Report, notified map[string]time.Time, now time.Time, p StalePolicy) []StaleAction {
	if p.NoticePeriod <= 0 {
		p.NoticePeriod = 14 * day
	}
	var out []StaleAction
	stale := make(map[string]bool, len(r.StaleTokens))
	for _, t := range r.StaleTokens {
		stale[t.ID] = true
		at, ok := notified[t.ID]
		switch {
		case !ok:
			out = append(out, StaleAction{Step: StaleNotify, TokenID: t.ID, Name: t.Name, Owner: t.Owner,
				Why: staleWhy(t, r.Windows.StaleDays)})
		case t.LastUsedAt.After(at):
			out = append(out, StaleAction{Step: StaleClear, TokenID: t.ID, Name: t.Name, Owner: t.Owner, Why: "used since the notice"})
		case p.Revoke && now.Sub(at) >= p.NoticePeriod:
			out = append(out, StaleAction{Step: StaleRevoke, TokenID: t.ID, Name: t.Name, Owner: t.Owner,
				Why: staleWhy(t, r.Windows.StaleDays) + "; owner notified " + at.UTC().Format(time.DateOnly) + " with no use since"})
		}
	}
	for id := range notified {
		if !stale[id] {
			out = append(out, StaleAction{Step: StaleClear, TokenID: id, Why: "no longer stale (used, revoked or expired)"})
		}
	}
	slices.SortFunc(out, func(a, b StaleAction) int {
		if c := strings.Compare(string(a.Step), string(b.Step)); c != 0 {
			return c
		}
		return strings.Compare(a.TokenID, b.TokenID)
	})
	return out
}

func staleWhy(t StaleToken, staleDays int) string {
	if t.LastUsedAt.IsZero() {
		return "never used; created more than " + strconv.Itoa(staleDays) + " days ago"
	}
	return "unused for " + strconv.Itoa(t.IdleDays) + " days"
}
