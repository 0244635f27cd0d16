package monitor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenward/tokenward"
)

// ReportOptions are the windows of the hygiene report.
type ReportOptions struct {
	StaleAfter          time.Duration // default 30 days
	ExpiryWindow        time.Duration // default 14 days
	OverPrivilegeWindow time.Duration // default 30 days
}

// RotationPolicy says how often a secret must rotate, and when it last did.
type RotationPolicy struct {
	Secret      string        `json:"secret"` // project/env/name
	Every       time.Duration `json:"every"`
	LastRotated time.Time     `json:"last_rotated,omitzero"` // zero: never; counts from the secret's creation
}

// ReportInput is everything the report is computed from.
type ReportInput struct {
	Now       time.Time
	Tokens    []*tokenward.Token
	Secrets   []*tokenward.Secret
	Rotations []RotationPolicy
	// Usage per token id: the (action, resource) pairs it exercised, as
	// Monitor.Usage returns them. A token missing here has exercised nothing
	// the monitor saw.
	Usage     map[string]TokenUsage
	Anomalies []Anomaly // the open (unacknowledged) ones
	Options   ReportOptions
}

// Report is the lifecycle-hygiene page: `tokenward report`.
type Report struct {
	GeneratedAt      time.Time        `json:"generated_at"`
	Windows          ReportWindows    `json:"windows"`
	Expiring         []ExpiringItem   `json:"expiring"`
	OverdueRotations []OverdueItem    `json:"overdue_rotations"`
	StaleTokens      []StaleToken     `json:"stale_tokens"`
	OverPrivileged   []OverPrivileged `json:"over_privileged"`
	OpenAnomalies    []Anomaly        `json:"open_anomalies"`
	// LeaseVolume lists the tokens that had leases of dynamic sources
	// made (database roles), most first, at most MaxLeaseVolume.
	LeaseVolume []LeaseVolume `json:"lease_volume,omitempty"`
}

// LeaseVolume is how many leases of dynamic sources a token had made.
type LeaseVolume struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Leases int64  `json:"leases"`
}

// MaxLeaseVolume bounds the report's lease volume list.
const MaxLeaseVolume = 20

// ReportWindows are the windows a report was built with, in days.
type ReportWindows struct {
	StaleDays         int `json:"stale_days"`
	ExpiryDays        int `json:"expiry_days"`
	OverPrivilegeDays int `json:"over_privilege_days"`
}

// ExpiringItem is a token or secret that expires inside the window (or
// already has, for secrets, whose upstream credential then no longer works).
type ExpiringItem struct {
	Kind      string    `json:"kind"` // "token" or "secret"
	ID        string    `json:"id"`   // token id, or project/env/name
	Name      string    `json:"name,omitempty"`
	Owner     string    `json:"owner,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	InDays    int       `json:"in_days"` // negative: expired that many days ago
}

// OverdueItem is a secret past its rotation due date.
type OverdueItem struct {
	Secret      string    `json:"secret"`
	Owner       string    `json:"owner,omitempty"`
	DueAt       time.Time `json:"due_at"`
	OverdueDays int       `json:"overdue_days"`
}

// StaleToken is an active token unused for StaleAfter (or never used and
// older than that).
type StaleToken struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Owner      string    `json:"owner,omitempty"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"` // zero: never used
	IdleDays   int       `json:"idle_days"`
}

// OverPrivileged lists the grants a token did not exercise in the window.
type OverPrivileged struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Owner  string   `json:"owner,omitempty"`
	Unused []string `json:"unused_grants"`
	Total  int      `json:"total_grants"`
}

const day = 24 * time.Hour

func days(d time.Duration) int { return int(d / day) }

// BuildReport computes the hygiene report. It is a pure function of in.
func BuildReport(in ReportInput) *Report {
	o := in.Options
	if o.StaleAfter <= 0 {
		o.StaleAfter = 30 * day
	}
	if o.ExpiryWindow <= 0 {
		o.ExpiryWindow = 14 * day
	}
	if o.OverPrivilegeWindow <= 0 {
		o.OverPrivilegeWindow = 30 * day
	}
	now := in.Now.UTC()
	r := &Report{
		GeneratedAt:      now,
		Windows:          ReportWindows{days(o.StaleAfter), days(o.ExpiryWindow), days(o.OverPrivilegeWindow)},
		Expiring:         []ExpiringItem{},
		OverdueRotations: []OverdueItem{},
		StaleTokens:      []StaleToken{},
		OverPrivileged:   []OverPrivileged{},
		OpenAnomalies:    []Anomaly{},
	}
	for _, t := range in.Tokens {
		if !t.Active(now) {
			continue
		}
		// JIT tokens live minutes to hours: their expiry is the design, not
		// news, and they are never stale or worth narrowing.
		if t.Kind == tokenward.TokenJIT {
			continue
		}
		if !t.ExpiresAt.IsZero() && t.ExpiresAt.Sub(now) <= o.ExpiryWindow {
			r.Expiring = append(r.Expiring, ExpiringItem{Kind: "token", ID: t.ID, Name: t.Name, Owner: t.Owner,
				ExpiresAt: t.ExpiresAt.UTC(), InDays: days(t.ExpiresAt.Sub(now))})
		}
		last := t.LastUsedAt
		if u, ok := in.Usage[t.ID]; ok && u.LastAt.After(last) {
			last = u.LastAt
		}
		since := last
		if since.IsZero() {
			since = t.CreatedAt
		}
		if idle := now.Sub(since); idle >= o.StaleAfter {
			r.StaleTokens = append(r.StaleTokens, StaleToken{ID: t.ID, Name: t.Name, Owner: t.Owner, LastUsedAt: last.UTC(), IdleDays: days(idle)})
		}
		if now.Sub(t.CreatedAt) >= o.OverPrivilegeWindow && len(t.Grants) > 0 {
			unused := unusedGrants(t.Grants, in.Usage[t.ID], now.Add(-o.OverPrivilegeWindow))
			if len(unused) > 0 {
				r.OverPrivileged = append(r.OverPrivileged, OverPrivileged{ID: t.ID, Name: t.Name, Owner: t.Owner, Unused: unused, Total: len(t.Grants)})
			}
		}
	}
	byPath := make(map[string]*tokenward.Secret, len(in.Secrets))
	for _, s := range in.Secrets {
		byPath[s.Path()] = s
		if !s.ExpiresAt.IsZero() && s.ExpiresAt.Sub(now) <= o.ExpiryWindow {
			r.Expiring = append(r.Expiring, ExpiringItem{Kind: "secret", ID: s.Path(), Owner: s.Owner,
				ExpiresAt: s.ExpiresAt.UTC(), InDays: days(s.ExpiresAt.Sub(now))})
		}
	}
	for _, p := range in.Rotations {
		if p.Every <= 0 {
			continue
		}
		from := p.LastRotated
		owner := ""
		if s := byPath[p.Secret]; s != nil {
			owner = s.Owner
			if from.IsZero() {
				from = s.CreatedAt
			}
		}
		if from.IsZero() {
			continue // unknown secret that never rotated: nothing to count from
		}
		due := from.Add(p.Every)
		if now.After(due) {
			r.OverdueRotations = append(r.OverdueRotations, OverdueItem{Secret: p.Secret, Owner: owner, DueAt: due.UTC(), OverdueDays: days(now.Sub(due))})
		}
	}
	r.OpenAnomalies = append(r.OpenAnomalies, in.Anomalies...)
	for _, t := range in.Tokens {
		// Every kind, JIT above all: a job's leases are its database roles.
		if n := in.Usage[t.ID].Leases; n > 0 {
			r.LeaseVolume = append(r.LeaseVolume, LeaseVolume{ID: t.ID, Name: t.Name, Kind: string(t.Kind), Leases: n})
		}
	}
	slices.SortFunc(r.LeaseVolume, func(a, b LeaseVolume) int {
		return cmp.Or(cmp.Compare(b.Leases, a.Leases), strings.Compare(a.ID, b.ID))
	})
	r.LeaseVolume = r.LeaseVolume[:min(len(r.LeaseVolume), MaxLeaseVolume)]

	slices.SortFunc(r.Expiring, func(a, b ExpiringItem) int {
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), strings.Compare(a.ID, b.ID))
	})
	slices.SortFunc(r.OverdueRotations, func(a, b OverdueItem) int {
		return cmp.Or(cmp.Compare(b.OverdueDays, a.OverdueDays), strings.Compare(a.Secret, b.Secret))
	})
	slices.SortFunc(r.StaleTokens, func(a, b StaleToken) int {
		return cmp.Or(cmp.Compare(b.IdleDays, a.IdleDays), strings.Compare(a.Name, b.Name))
	})
	slices.SortFunc(r.OverPrivileged, func(a, b OverPrivileged) int { return strings.Compare(a.Name, b.Name) })
	sev := map[Severity]int{SeverityCritical: 0, SeverityHigh: 1, SeverityMedium: 2, SeverityLow: 3}
	slices.SortFunc(r.OpenAnomalies, func(a, b Anomaly) int {
		return cmp.Or(cmp.Compare(sev[a.Severity], sev[b.Severity]), a.Time.Compare(b.Time))
	})
	return r
}

// grantActionOf maps an audit action ("secret.read") to the grant action
// that allows it. Usage is summarised per token as the set of allowed
// (audit action, resource) pairs with their last time; a grant is exercised
// when some pair inside the window maps to an action the grant allows on a
// resource it covers.
// ActionGatewayCall is the audit action of a call through a gateway
// route (internal/httpapi); its Resource is "gateway:<route>".
const ActionGatewayCall = "gateway.call"

func grantActionOf(auditAction string) (tokenward.Action, bool) {
	switch auditAction {
	case "secret.read", "secret.read_env", "secret.export", "secret.list", "secret.history":
		return tokenward.ActionRead, true
	case "secret.write", "secret.rollback", "secret.create", "secret.update", "secret.delete", "secret.archive":
		return tokenward.ActionWrite, true
	case "secret.rotate":
		return tokenward.ActionRotate, true
	case "token.revoke":
		return tokenward.ActionRevoke, true
	case "audit.search", "audit.tail", "audit.verify", "audit.read":
		return tokenward.ActionAudit, true
	}
	return "", false
}

func unusedGrants(gs tokenward.Grants, u TokenUsage, since time.Time) []string {
	var unused []string
	for _, g := range gs {
		used := false
		for _, x := range u.Uses {
			if x.LastAt.Before(since) {
				continue
			}
			if x.Action == ActionGatewayCall {
				// A call through a gateway route exercises the grants that
				// allow the route (its resource is "gateway:<route>").
				if g.AllowsRoute(strings.TrimPrefix(x.Resource, "gateway:")) {
					used = true
					break
				}
				continue
			}
			act, ok := grantActionOf(x.Action)
			if !ok {
				// Any other action (admin operations) exercises only admin grants.
				if g.Action != tokenward.ActionAdmin {
					continue
				}
				act = tokenward.ActionAdmin
			}
			p, e, n, ok := splitResource(x.Resource)
			if !ok && strings.Count(x.Resource, "/") == 1 {
				// A project/env resource (secret.list, secret.read_env) exercises
				// the grants that reach into that environment.
				p, e, _ := strings.Cut(x.Resource, "/")
				if (tokenward.Grants{g}).AllowsAnyIn(act, p, e) {
					used = true
					break
				}
				continue
			}
			if !ok {
				// Not a secret path (e.g. "token:tok_..."): an action without a
				// project exercises grants of that action anywhere.
				if g.Action == act || g.Action == tokenward.ActionAdmin {
					used = true
					break
				}
				continue
			}
			if g.Allows(act, p, e, n) {
				used = true
				break
			}
		}
		if !used {
			unused = append(unused, g.String())
		}
	}
	return unused
}

func splitResource(r string) (project, env, name string, ok bool) {
	parts := strings.Split(r, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", "", "", false
	}
	if parts[2] == "" {
		parts[2] = "*" // an environment-wide action (export) exercises what covers the env
	}
	return parts[0], parts[1], parts[2], true
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	date := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02")
	}
	p("tokenward hygiene report, %s\n", r.GeneratedAt.Format(time.RFC3339))

	p("\nExpiring within %d days (%d)\n", r.Windows.ExpiryDays, len(r.Expiring))
	if len(r.Expiring) > 0 {
		p("  KIND\tID\tNAME\tOWNER\tEXPIRES\tIN DAYS\n")
	}
	for _, x := range r.Expiring {
		p("  %s\t%s\t%s\t%s\t%s\t%d\n", x.Kind, x.ID, dash(x.Name), dash(x.Owner), date(x.ExpiresAt), x.InDays)
	}

	p("\nOverdue rotations (%d)\n", len(r.OverdueRotations))
	if len(r.OverdueRotations) > 0 {
		p("  SECRET\tOWNER\tDUE\tOVERDUE DAYS\n")
	}
	for _, x := range r.OverdueRotations {
		p("  %s\t%s\t%s\t%d\n", x.Secret, dash(x.Owner), date(x.DueAt), x.OverdueDays)
	}

	p("\nStale tokens, unused for %d days or more (%d)\n", r.Windows.StaleDays, len(r.StaleTokens))
	if len(r.StaleTokens) > 0 {
		p("  NAME\tID\tOWNER\tLAST USED\tIDLE DAYS\n")
	}
	for _, x := range r.StaleTokens {
		p("  %s\t%s\t%s\t%s\t%d\n", x.Name, x.ID, dash(x.Owner), date(x.LastUsedAt), x.IdleDays)
	}

	p("\nOver-privileged tokens, grants unused in %d days (%d)\n", r.Windows.OverPrivilegeDays, len(r.OverPrivileged))
	if len(r.OverPrivileged) > 0 {
		p("  NAME\tID\tOWNER\tUNUSED GRANTS\n")
	}
	for _, x := range r.OverPrivileged {
		p("  %s\t%s\t%s\t%s (%d of %d)\n", x.Name, x.ID, dash(x.Owner), strings.Join(x.Unused, " "), len(x.Unused), x.Total)
	}

	p("\nOpen anomalies (%d)\n", len(r.OpenAnomalies))
	if len(r.OpenAnomalies) > 0 {
		p("  SEVERITY\tRULE\tTIME\tTOKEN\tEXPLANATION\n")
	}
	for _, a := range r.OpenAnomalies {
		tok := a.TokenName
		if tok == "" {
			tok = a.TokenID
		}
		p("  %s\t%s\t%s\t%s\t%s\n", a.Severity, a.Rule, a.Time.UTC().Format(time.RFC3339), dash(tok), dash(a.Explanation))
	}

	if len(r.LeaseVolume) > 0 {
		p("\nLeases of dynamic sources, by token (%d)\n", len(r.LeaseVolume))
		p("  NAME\tID\tKIND\tLEASES\n")
	}
	for _, x := range r.LeaseVolume {
		p("  %s\t%s\t%s\t%d\n", dash(x.Name), x.ID, x.Kind, x.Leases)
	}
	return tw.Flush()
}

// dash shows "" as "-" and replaces control characters, so a stored owner
// or description cannot rewrite the reader's terminal.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
