package monitor

import (
	"cmp"
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
)

// snapshotVersion is bumped when the snapshot form changes incompatibly.
const snapshotVersion = 1

// maxSnapshotTokens bounds what Restore accepts, so a corrupt or hostile
// snapshot cannot exhaust memory.
const maxSnapshotTokens = 1 << 20

type snapshot struct {
	Version int                        `json:"version"`
	Tokens  map[string]*tokenSnapshot  `json:"tokens"`
	Secrets map[string]*secretSnapshot `json:"secrets,omitempty"`
	// Cursor is the seq of the last audit entry the state counts (see
	// SetCursor); absent in snapshots of a monitor fed in line.
	Cursor int64 `json:"cursor,omitempty"`
}

type secretSnapshot struct {
	LastAt    time.Time `json:"last_at"`
	LastIP    string    `json:"last_ip,omitempty"`
	LastToken string    `json:"last_token,omitempty"`
	Days      []dayN    `json:"days,omitempty"`
}

// dayN is one non-empty slot of a dayCounts ring.
type dayN struct {
	Day int64  `json:"d"` // unix day
	N   uint32 `json:"n"`
}

func daysOf(d *dayCounts) []dayN {
	var out []dayN
	for _, s := range d {
		if s.N > 0 {
			out = append(out, dayN{s.Day, s.N})
		}
	}
	slices.SortFunc(out, func(a, b dayN) int { return cmp.Compare(a.Day, b.Day) })
	return out
}

func restoreDays(in []dayN) (dayCounts, error) {
	var d dayCounts
	if len(in) > usageDays {
		return d, tokenward.Errorf(tokenward.EINVALID, "more than %d daily counts", usageDays)
	}
	for _, x := range in {
		if x.Day < 0 || x.N == 0 {
			return d, tokenward.Errorf(tokenward.EINVALID, "bad daily count")
		}
		slot := &d[x.Day%usageDays]
		if slot.N > 0 {
			return d, tokenward.Errorf(tokenward.EINVALID, "daily counts collide")
		}
		slot.Day, slot.N = x.Day, x.N
	}
	return d, nil
}

type tokenSnapshot struct {
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
	LastIP       string     `json:"last_ip,omitempty"`
	Requests     int64      `json:"requests"`
	ActiveHours  int64      `json:"active_hours"`
	LastHour     int64      `json:"last_hour"`
	Networks     []string   `json:"networks,omitempty"`
	Uses         []Use      `json:"uses,omitempty"`
	RateEWMA     float64    `json:"rate_ewma"`
	ActiveMinute int64      `json:"active_minutes"`
	Days         []dayN     `json:"days,omitempty"`
	FirstNet     string     `json:"first_net,omitempty"`
	Leaked       bool       `json:"leaked,omitempty"`
	Leases       int64      `json:"leases,omitempty"`
	Fired        []ruleTime `json:"fired,omitempty"`
}

type ruleTime struct {
	Rule RuleID    `json:"rule"`
	At   time.Time `json:"at"`
}

// Use is one (audit action, resource) pair a token exercised, with when it
// last did.
type Use struct {
	Action   string    `json:"action"`
	Resource string    `json:"resource,omitempty"`
	LastAt   time.Time `json:"last_at"`
}

// Snapshot returns the learned baselines as JSON, for the integrator to
// store and hand back to Restore after a restart. It holds token ids,
// networks and resource names (never values or tokens). Short-lived windows
// (the current minute, denied-request rings, per-IP state) are not kept.
func (m *Monitor) Snapshot() ([]byte, error) {
	m.mu.Lock()
	snap := snapshot{Version: snapshotVersion, Tokens: make(map[string]*tokenSnapshot, len(m.state)), Cursor: m.cursor}
	for id, s := range m.state {
		ts := &tokenSnapshot{
			FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, LastIP: s.LastIP, Requests: s.Requests,
			ActiveHours: s.ActiveHours, LastHour: s.LastHour,
			Uses: usesOf(s), RateEWMA: s.RateEWMA, ActiveMinute: s.ActiveMinute, Leaked: s.Leaked, Leases: s.Leases,
		}
		for _, p := range s.Networks {
			ts.Networks = append(ts.Networks, p.String())
		}
		if s.FirstNet.IsValid() {
			ts.FirstNet = s.FirstNet.String()
		}
		for i, at := range s.Fired {
			if !at.IsZero() {
				ts.Fired = append(ts.Fired, ruleTime{Rule: Rules[i], At: at})
			}
		}
		ts.Days = daysOf(&s.Days)
		snap.Tokens[id] = ts
	}
	if len(m.secrets) > 0 {
		snap.Secrets = make(map[string]*secretSnapshot, len(m.secrets))
		for path, s := range m.secrets {
			snap.Secrets[path] = &secretSnapshot{LastAt: s.LastAt, LastIP: s.LastIP, LastToken: s.LastToken, Days: daysOf(&s.Days)}
		}
	}
	m.mu.Unlock()
	return json.Marshal(&snap)
}

func usesOf(s *tokenState) []Use {
	uses := make([]Use, 0, len(s.Uses))
	for k, at := range s.Uses {
		uses = append(uses, Use{Action: k.Action, Resource: k.Resource, LastAt: at})
	}
	slices.SortFunc(uses, func(a, b Use) int {
		if c := strings.Compare(a.Action, b.Action); c != 0 {
			return c
		}
		return strings.Compare(a.Resource, b.Resource)
	})
	return uses
}

// Restore replaces the learned baselines with a Snapshot. It validates the
// whole snapshot first and changes nothing on error.
func (m *Monitor) Restore(data []byte) error {
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: not valid JSON")
	}
	if snap.Version != snapshotVersion {
		return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: version %d, want %d", snap.Version, snapshotVersion)
	}
	if snap.Cursor < 0 {
		return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: negative cursor")
	}
	if len(snap.Tokens) > maxSnapshotTokens {
		return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: %d tokens, more than %d", len(snap.Tokens), maxSnapshotTokens)
	}
	state := make(map[string]*tokenState, len(snap.Tokens))
	for id, ts := range snap.Tokens {
		if ts == nil || id == "" || len(id) > 256 {
			return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: bad token entry")
		}
		if ts.Requests < 0 || ts.ActiveMinute < 0 || ts.ActiveHours < 0 || ts.LastHour < 0 || ts.RateEWMA < 0 || math.IsNaN(ts.RateEWMA) || math.IsInf(ts.RateEWMA, 0) {
			return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: token %q: negative or non-finite counters", tokenward.Printable(id))
		}
		if len(ts.Networks) > m.cfg.MaxNetworksPerToken || len(ts.Uses) > m.cfg.MaxUsesPerToken {
			return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: token %q: more networks or uses than the configured bounds", tokenward.Printable(id))
		}
		s := &tokenState{
			FirstSeen: ts.FirstSeen, LastSeen: ts.LastSeen, LastIP: ts.LastIP, Requests: ts.Requests,
			ActiveHours: ts.ActiveHours, LastHour: ts.LastHour,
			RateEWMA: ts.RateEWMA, ActiveMinute: ts.ActiveMinute, Leaked: ts.Leaked, Leases: ts.Leases,
			Uses: make(map[useKey]time.Time, len(ts.Uses)),
		}
		days, err := restoreDays(ts.Days)
		if err != nil {
			return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: token %q: %s", tokenward.Printable(id), tokenward.ErrorMessage(err))
		}
		s.Days = days
		for _, n := range ts.Networks {
			p, err := parseNetwork(n)
			if err != nil {
				return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: token %q: %s", tokenward.Printable(id), tokenward.ErrorMessage(err))
			}
			s.Networks = append(s.Networks, p)
		}
		if ts.FirstNet != "" {
			p, err := parseNetwork(ts.FirstNet)
			if err != nil {
				return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: token %q: %s", tokenward.Printable(id), tokenward.ErrorMessage(err))
			}
			s.FirstNet = p
		}
		for _, u := range ts.Uses {
			s.Uses[useKey{Action: u.Action, Resource: u.Resource}] = u.LastAt
		}
		for _, f := range ts.Fired {
			i := ruleIndex(f.Rule)
			if i < 0 {
				return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: token %q: unknown rule %q", tokenward.Printable(id), tokenward.Printable(string(f.Rule)))
			}
			s.Fired[i] = f.At
		}
		state[id] = s
	}
	if len(snap.Secrets) > m.cfg.MaxSecrets {
		return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: %d secrets, more than %d", len(snap.Secrets), m.cfg.MaxSecrets)
	}
	secrets := make(map[string]*secretUsage, len(snap.Secrets))
	for path, ss := range snap.Secrets {
		if ss == nil || path == "" || len(path) > 512 {
			return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: bad secret entry")
		}
		days, err := restoreDays(ss.Days)
		if err != nil {
			return tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: secret %q: %s", tokenward.Printable(path), tokenward.ErrorMessage(err))
		}
		secrets[path] = &secretUsage{LastAt: ss.LastAt, LastIP: ss.LastIP, LastToken: ss.LastToken, Days: days}
	}
	m.mu.Lock()
	m.state = state
	m.secrets = secrets
	m.cursor = snap.Cursor
	m.mu.Unlock()
	return nil
}

// SetCursor records the seq of the last audit entry the monitor was fed,
// for a monitor that reads a shared audit table: Snapshot saves it with
// the state and Restore brings it back, so the reader resumes after it and
// counts nothing twice. The caller keeps it consistent with the state (it
// feeds an entry and then sets the cursor, and snapshots between entries).
func (m *Monitor) SetCursor(seq int64) {
	m.mu.Lock()
	m.cursor = seq
	m.mu.Unlock()
}

// Cursor returns what SetCursor or Restore set (0: none).
func (m *Monitor) Cursor() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursor
}

// parseNetwork accepts only the masked /24 (IPv4) or /48 (IPv6) form that
// Snapshot writes.
func parseNetwork(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, tokenward.Errorf(tokenward.EINVALID, "network %q is not a CIDR prefix", tokenward.Printable(s))
	}
	want := 48
	if p.Addr().Is4() {
		want = 24
	}
	if p.Bits() != want || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return netip.Prefix{}, tokenward.Errorf(tokenward.EINVALID, "network %q: want a masked IPv4 /24 or IPv6 /48", tokenward.Printable(s))
	}
	return p, nil
}

// TokenUsage is what the monitor learned of one token's use.
type TokenUsage struct {
	TokenID  string    `json:"token_id"`
	LastAt   time.Time `json:"last_at"`
	LastIP   string    `json:"last_ip,omitempty"`
	Requests int64     `json:"requests"`
	// Daily counts requests per UTC day over the last 31 days.
	Daily []DayCount `json:"daily"`
	// Uses are the allowed (action, resource) pairs, sorted, each with its
	// last time; at most Config.MaxUsesPerToken distinct pairs are kept.
	Uses []Use `json:"uses"`
	// Leases is how many leases of dynamic sources were made for it.
	Leases int64 `json:"leases,omitempty"`
}

// Usage returns what the monitor knows of token id's use, for the
// over-privilege report and "token list".
func (m *Monitor) Usage(id string) (TokenUsage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state[id]
	if s == nil {
		return TokenUsage{TokenID: id}, false
	}
	return TokenUsage{TokenID: id, LastAt: s.LastSeen, LastIP: s.LastIP, Requests: s.Requests, Daily: s.Days.list(), Uses: usesOf(s), Leases: s.Leases}, true
}

// SnapshotCursor returns the cursor a Snapshot holds (0: none), without
// restoring it.
func SnapshotCursor(data []byte) (int64, error) {
	var snap struct {
		Cursor int64 `json:"cursor"`
	}
	if err := json.Unmarshal(data, &snap); err != nil || snap.Cursor < 0 {
		return 0, tokenward.Errorf(tokenward.EINVALID, "monitor snapshot: no valid cursor")
	}
	return snap.Cursor, nil
}
