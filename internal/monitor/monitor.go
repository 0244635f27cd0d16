package monitor

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
)

// Reasons the server may put on an audit entry that it refused because the
// token was revoked or expired. The monitor also knows this from the token
// records it is given (SetToken); either signal suffices.
const (
	ReasonTokenRevoked = "token revoked"
	ReasonTokenExpired = "token expired"
)

// ActionReportLeak is the audit action of a leak report; its Resource is
// "token:<id>" of the leaked token.
const ActionReportLeak = "token.report_leak"

// ActionLeaseCreate is the audit action of a dynamic-source lease made
// (docs/dynamic.md): each is a database role created for the token.
const ActionLeaseCreate = "lease.create"

// Config tunes the rules. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// LearningPeriod and LearningActiveHours: a token's baselines (networks,
	// secrets read) are learned until it has been seen for LearningPeriod and
	// been active in LearningActiveHours distinct clock hours; rules that
	// compare with a baseline fire only after that. Hours, not requests,
	// because the ten reads of one CI job are one look at its network.
	LearningPeriod      time.Duration
	LearningActiveHours int64
	// MaxStableNetworks: a token seen from more networks than this during
	// learning has no stable sources, and RuleNewNetwork never fires for it.
	MaxStableNetworks int
	// RateFloor (requests per minute), RateMultiplier and RateAlpha: a
	// minute with more than max(RateFloor, RateMultiplier*baseline) requests
	// fires RuleRateBurst; baseline is an EWMA (weight RateAlpha) over the
	// token's active minutes.
	RateFloor      float64
	RateMultiplier float64
	RateAlpha      float64
	// ReadActions are the audit actions that read a secret's value.
	ReadActions []string
	// JITJobWindow: a JIT token used later than this after its first use
	// fires RuleJITAfterJob.
	JITJobWindow time.Duration
	// DeniedWindow, DeniedPerToken and DeniedPerIP: that many denied
	// requests within DeniedWindow, by one token or from one source IP.
	DeniedWindow   time.Duration
	DeniedPerToken int
	DeniedPerIP    int
	// LeaseWindow and LeaseBurst: that many leases of dynamic sources
	// made for one token within LeaseWindow fire RuleLeaseBurst (a job
	// asking for hundreds of database roles is not a job).
	LeaseWindow time.Duration
	LeaseBurst  int
	// Cooldown: a rule fires at most once per token (or IP) per Cooldown.
	Cooldown time.Duration
	// Policy overrides DefaultPolicy per rule.
	Policy map[RuleID]Action
	// StateTTL and JITStateTTL: Prune drops baselines idle that long.
	StateTTL    time.Duration
	JITStateTTL time.Duration
	// Bounds on memory per token and in total.
	MaxNetworksPerToken int
	MaxUsesPerToken     int
	MaxIPs              int
	MaxSecrets          int // secrets whose reads are counted (SecretUsage)
}

// DefaultConfig returns the defaults documented in docs/monitoring.md.
func DefaultConfig() Config {
	return Config{
		LearningPeriod:      7 * 24 * time.Hour,
		LearningActiveHours: 12,
		MaxStableNetworks:   8,
		RateFloor:           60,
		RateMultiplier:      10,
		RateAlpha:           0.05,
		ReadActions:         []string{"secret.read", "secret.read_env", "secret.export"},
		JITJobWindow:        time.Hour,
		DeniedWindow:        5 * time.Minute,
		DeniedPerToken:      10,
		DeniedPerIP:         20,
		LeaseWindow:         time.Hour,
		LeaseBurst:          100,
		Cooldown:            time.Hour,
		StateTTL:            90 * 24 * time.Hour,
		JITStateTTL:         24 * time.Hour,
		MaxNetworksPerToken: 64,
		MaxUsesPerToken:     1024,
		MaxIPs:              65536,
		MaxSecrets:          100000,
	}
}

// Validate checks c after defaults are filled in.
func (c *Config) Validate() error {
	switch {
	case c.RateMultiplier < 1:
		return tokenward.Errorf(tokenward.EINVALID, "monitor: rate multiplier %v: want >= 1", c.RateMultiplier)
	case c.RateAlpha <= 0 || c.RateAlpha > 1:
		return tokenward.Errorf(tokenward.EINVALID, "monitor: rate alpha %v: want in (0, 1]", c.RateAlpha)
	case c.DeniedPerToken < 2 || c.DeniedPerIP < 2 || c.DeniedPerToken > 10000 || c.DeniedPerIP > 10000:
		return tokenward.Errorf(tokenward.EINVALID, "monitor: denied thresholds must be in [2, 10000]")
	case c.LeaseBurst < 2 || c.LeaseBurst > 100000:
		return tokenward.Errorf(tokenward.EINVALID, "monitor: lease burst must be in [2, 100000]")
	}
	for r, a := range c.Policy {
		if ruleIndex(r) < 0 {
			return tokenward.Errorf(tokenward.EINVALID, "monitor: policy names unknown rule %q", r)
		}
		if a != ActionAlert && a != ActionSuspend {
			return tokenward.Errorf(tokenward.EINVALID, "monitor: policy for %s: unknown action %q (want alert or suspend)", r, a)
		}
	}
	return nil
}

func (c *Config) fill() {
	d := DefaultConfig()
	setDur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	setInt := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setF := func(p *float64, v float64) {
		if *p <= 0 {
			*p = v
		}
	}
	setDur(&c.LearningPeriod, d.LearningPeriod)
	if c.LearningActiveHours <= 0 {
		c.LearningActiveHours = d.LearningActiveHours
	}
	setInt(&c.MaxStableNetworks, d.MaxStableNetworks)
	setF(&c.RateFloor, d.RateFloor)
	setF(&c.RateMultiplier, d.RateMultiplier)
	setF(&c.RateAlpha, d.RateAlpha)
	if len(c.ReadActions) == 0 {
		c.ReadActions = d.ReadActions
	}
	setDur(&c.JITJobWindow, d.JITJobWindow)
	setDur(&c.DeniedWindow, d.DeniedWindow)
	setInt(&c.DeniedPerToken, d.DeniedPerToken)
	setInt(&c.DeniedPerIP, d.DeniedPerIP)
	setDur(&c.LeaseWindow, d.LeaseWindow)
	setInt(&c.LeaseBurst, d.LeaseBurst)
	setDur(&c.Cooldown, d.Cooldown)
	setDur(&c.StateTTL, d.StateTTL)
	setDur(&c.JITStateTTL, d.JITStateTTL)
	setInt(&c.MaxNetworksPerToken, d.MaxNetworksPerToken)
	setInt(&c.MaxUsesPerToken, d.MaxUsesPerToken)
	setInt(&c.MaxIPs, d.MaxIPs)
	setInt(&c.MaxSecrets, d.MaxSecrets)
}

// tokenInfo is what the monitor needs of a token record.
type tokenInfo struct {
	Name      string
	Kind      tokenward.TokenKind
	ExpiresAt time.Time
	RevokedAt time.Time
}

// useKey is one (audit action, resource) pair a token exercised.
type useKey struct {
	Action   string
	Resource string
}

// tokenState is the bounded per-token baseline.
type tokenState struct {
	FirstSeen time.Time
	LastSeen  time.Time
	LastIP    string
	Requests  int64
	// ActiveHours counts distinct clock hours with a request; LastHour is
	// the latest (unix hours).
	ActiveHours int64
	LastHour    int64
	Days        dayCounts      // requests per day
	Networks    []netip.Prefix // learned networks, at most MaxNetworksPerToken
	Uses        map[useKey]time.Time
	// Rate: the current minute and the EWMA over active minutes.
	Minute       int64
	MinuteCount  int
	MinuteFirst  Evidence
	MinuteFired  bool
	RateEWMA     float64
	ActiveMinute int64
	// JIT: first use and its network.
	FirstNet netip.Prefix
	Leaked   bool
	Denied   ring
	// Leases counts the leases made for the token; LeaseRing the latest
	// ones, for RuleLeaseBurst.
	Leases    int64
	LeaseRing ring
	Fired     [numRules]time.Time // last firing per rule, by ruleIndex
}

// ring keeps the last n denied requests, to test "n within a window" in O(1).
type ring struct {
	At  []time.Time
	Ev  []Evidence
	Pos int
}

// push records one entry and reports whether the ring is full and its oldest
// entry is within window of at.
func (r *ring) push(n int, at time.Time, ev Evidence, window time.Duration) bool {
	if len(r.At) < n {
		r.At = append(r.At, at)
		r.Ev = append(r.Ev, ev)
		r.Pos = len(r.At) % n
		return len(r.At) == n && at.Sub(r.At[0]) <= window
	}
	r.At[r.Pos], r.Ev[r.Pos] = at, ev
	r.Pos = (r.Pos + 1) % n
	return at.Sub(r.At[r.Pos]) <= window
}

func (r *ring) evidence() []Evidence {
	out := make([]Evidence, 0, len(r.Ev))
	out = append(out, r.Ev[r.Pos:]...)
	return append(out, r.Ev[:r.Pos]...)
}

type ipState struct {
	Denied ring
	Fired  time.Time
	Last   time.Time
}

// Monitor applies the anomaly rules to the audit stream. It is safe for
// concurrent use. Observe is O(1) amortized per entry, and memory per token
// is bounded by the Config limits.
type Monitor struct {
	cfg    Config
	policy [numRules]Action
	reads  map[string]bool

	mu     sync.Mutex
	tokens map[string]*tokenInfo
	state  map[string]*tokenState
	ips    map[netip.Addr]*ipState // by IPv4 address or IPv6 /64 (observeIP)
	// secrets counts reads per secret path, at most MaxSecrets paths.
	secrets map[string]*secretUsage
	pathBuf []byte // a secret's path being counted, reused under mu
	cursor  int64  // SetCursor

	observed atomic.Uint64
	fired    [numRules]atomic.Uint64
}

// New returns a monitor with cfg (zero fields take defaults).
func New(cfg Config) (*Monitor, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Monitor{
		cfg:    cfg,
		reads:  make(map[string]bool, len(cfg.ReadActions)),
		tokens: make(map[string]*tokenInfo),
		state:  make(map[string]*tokenState),
		ips:    make(map[netip.Addr]*ipState),

		secrets: make(map[string]*secretUsage),
	}
	for _, a := range cfg.ReadActions {
		m.reads[a] = true
	}
	for i, r := range Rules {
		a, ok := cfg.Policy[r]
		if !ok {
			a, ok = DefaultPolicy[r]
		}
		if !ok {
			a = ActionAlert
		}
		m.policy[i] = a
	}
	return m, nil
}

// SetToken tells the monitor a token's record: call it for every token at
// start-up and whenever one is created, revoked or changed.
func (m *Monitor) SetToken(t *tokenward.Token) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[t.ID] = &tokenInfo{Name: t.Name, Kind: t.Kind, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

// ForgetToken drops everything the monitor holds on a token (after it is
// purged). Tokens that are merely revoked should be kept, so their use is seen.
func (m *Monitor) ForgetToken(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tokens, id)
	delete(m.state, id)
}

// Prune bounds memory over time; call it periodically (hourly or daily).
// It drops the baselines of tokens idle for StateTTL (JIT tokens: for
// JITStateTTL, since a job never comes back), the records of JIT tokens
// expired for longer than StateTTL (a later use is still caught when the
// server sets ReasonTokenExpired), and per-IP state idle for a Cooldown.
func (m *Monitor) Prune(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.state {
		ttl := m.cfg.StateTTL
		if info := m.tokens[id]; info != nil && info.Kind == tokenward.TokenJIT {
			ttl = m.cfg.JITStateTTL
		}
		if now.Sub(s.LastSeen) > ttl {
			delete(m.state, id)
		}
	}
	for id, t := range m.tokens {
		if t.Kind == tokenward.TokenJIT && !t.ExpiresAt.IsZero() && now.Sub(t.ExpiresAt) > m.cfg.StateTTL {
			delete(m.tokens, id)
		}
	}
	for path, s := range m.secrets {
		if now.Sub(s.LastAt) > m.cfg.StateTTL {
			delete(m.secrets, path)
		}
	}
	for ip, s := range m.ips {
		if now.Sub(s.Last) > max(m.cfg.Cooldown, m.cfg.DeniedWindow) {
			delete(m.ips, ip)
		}
	}
}

// networkOf returns the /24 (IPv4) or /48 (IPv6) of a source IP.
func networkOf(ip string) (netip.Addr, netip.Prefix, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	return a, p, err == nil
}

// Observe feeds one recorded audit entry to the rules and returns the
// anomalies it triggers (nil almost always). Entries should arrive in time
// order; late entries are counted in the current minute.
func (m *Monitor) Observe(e *tokenward.AuditEntry) []Anomaly {
	m.observed.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Anomaly
	addr, net, hasNet := networkOf(e.SourceIP)
	// A request throttled by a rate limit (429) is refused but probes
	// nothing: a busy token over its limit is not an attacker.
	denied := e.Outcome == tokenward.OutcomeDenied && e.Status != 429

	if e.Action == ActionReportLeak && e.Outcome == tokenward.OutcomeAllowed { // a refused report proves nothing
		target := strings.TrimPrefix(e.Resource, "token:")
		if target == e.Resource || target == "" {
			target = e.TokenID
		}
		if target != "" {
			s := m.stateOf(target, e.Time)
			if !s.Leaked {
				s.Leaked = true
				out = m.fire(out, s, RuleLeakReported, e, target, "",
					"token was reported as leaked; treat it as compromised", evidenceOf(e))
			}
		}
	}

	if hasNet && denied {
		if a := m.observeIP(addr, e); a != nil {
			out = append(out, *a)
		}
	}
	if e.TokenID == "" {
		return out
	}
	s := m.stateOf(e.TokenID, e.Time)
	info := m.tokens[e.TokenID]
	s.Requests++
	s.Days.add(e.Time)
	if hour := e.Time.Unix() / 3600; hour != s.LastHour {
		s.ActiveHours++
		s.LastHour = hour
	}
	if e.Time.After(s.LastSeen) {
		s.LastSeen = e.Time
		s.LastIP = e.SourceIP
	}

	// Leak signals: any use of a revoked or expired token, on the first
	// request. The token's own revocation request is not a use after it.
	inactive := false
	switch {
	case e.Reason == ReasonTokenRevoked || info != nil && !info.RevokedAt.IsZero() && e.Time.After(info.RevokedAt) && !ownRevocation(e):
		inactive = true
		out = m.fire(out, s, RuleRevokedUse, e, e.TokenID, e.Resource,
			fmt.Sprintf("revoked token was presented (action %s, outcome %s): whoever holds it should not", e.Action, e.Outcome), evidenceOf(e))
	case e.Reason == ReasonTokenExpired || info != nil && !info.ExpiresAt.IsZero() && !e.Time.Before(info.ExpiresAt):
		inactive = true
		out = m.fire(out, s, RuleExpiredUse, e, e.TokenID, e.Resource,
			fmt.Sprintf("expired token was presented (action %s, outcome %s): a copy of it outlived its purpose", e.Action, e.Outcome), evidenceOf(e))
	}

	if denied {
		if s.Denied.push(m.cfg.DeniedPerToken, e.Time, evidenceOf(e), m.cfg.DeniedWindow) {
			out = m.fire(out, s, RuleDeniedBurst, e, e.TokenID, "",
				fmt.Sprintf("%d denied requests within %s: the token is probing for what it may reach", m.cfg.DeniedPerToken, m.cfg.DeniedWindow), s.Denied.evidence()...)
		}
	}

	if e.Action == ActionLeaseCreate && e.Outcome == tokenward.OutcomeAllowed {
		s.Leases++
		if s.LeaseRing.push(m.cfg.LeaseBurst, e.Time, evidenceOf(e), m.cfg.LeaseWindow) {
			out = m.fire(out, s, RuleLeaseBurst, e, e.TokenID, e.Resource,
				fmt.Sprintf("%d leases of dynamic sources (database roles) within %s: more than a job needs", m.cfg.LeaseBurst, m.cfg.LeaseWindow),
				s.LeaseRing.evidence()...)
		}
	}

	out = m.observeRate(out, s, e)

	// Without a record (SetToken not called yet), an entry carrying CI facts
	// is from a JIT token: only those have them.
	jit := info != nil && info.Kind == tokenward.TokenJIT || info == nil && len(e.CI) > 0
	if jit && !inactive {
		switch {
		case s.Requests == 1:
			s.FirstNet = net
		case e.Time.Sub(s.FirstSeen) > m.cfg.JITJobWindow:
			out = m.fire(out, s, RuleJITAfterJob, e, e.TokenID, e.Resource,
				fmt.Sprintf("just-in-time token used %s after its first use, beyond its %s job window", e.Time.Sub(s.FirstSeen).Round(time.Second), m.cfg.JITJobWindow), evidenceOf(e))
		}
		if hasNet && s.FirstNet.IsValid() && net != s.FirstNet {
			out = m.fire(out, s, RuleJITSecondSource, e, e.TokenID, e.Resource,
				fmt.Sprintf("just-in-time token used from network %s, but its job started from %s", net, s.FirstNet), evidenceOf(e))
		}
	}

	// The current hour counts only once the request is learned from: a
	// token is judged on what it did before this request.
	learned := e.Time.Sub(s.FirstSeen) >= m.cfg.LearningPeriod && s.ActiveHours > m.cfg.LearningActiveHours
	if hasNet && !jit {
		known := false
		for _, p := range s.Networks {
			if p == net {
				known = true
				break
			}
		}
		if !known {
			stable := learned && len(s.Networks) <= m.cfg.MaxStableNetworks
			if stable && !denied {
				out = m.fire(out, s, RuleNewNetwork, e, e.TokenID, "",
					fmt.Sprintf("token used from network %s; over %s it had used only %d network(s)", net, e.Time.Sub(s.FirstSeen).Round(time.Hour), len(s.Networks)), evidenceOf(e))
			}
			if len(s.Networks) < m.cfg.MaxNetworksPerToken && (!denied || !learned) {
				s.Networks = append(s.Networks, net)
			}
		}
	}

	if e.Outcome == tokenward.OutcomeAllowed && m.reads[e.Action] && strings.Count(e.Resource, "/") == 2 {
		// Per-secret usage counts reads of one secret; an environment-wide
		// read (project/env) is counted by the server through
		// RecordSecretReads, which knows the secrets it returned.
		m.observeSecretRead(e.Resource, e.Time, e.SourceIP, e.TokenID)
	}
	if e.Outcome == tokenward.OutcomeAllowed && e.Action != "" {
		k := useKey{Action: e.Action, Resource: e.Resource}
		if _, ok := s.Uses[k]; ok {
			s.Uses[k] = e.Time
		} else {
			if m.reads[e.Action] && learned && !jit {
				out = m.fire(out, s, RuleNewSecretRead, e, e.TokenID, e.Resource,
					fmt.Sprintf("token read %s, which it had never read in %s of use", e.Resource, e.Time.Sub(s.FirstSeen).Round(time.Hour)), evidenceOf(e))
			}
			if len(s.Uses) < m.cfg.MaxUsesPerToken {
				s.Uses[k] = e.Time
			}
		}
	}
	return out
}

// ownRevocation reports whether e is a token's allowed request revoking
// itself. The server sets RevokedAt while it handles that request and
// stamps the entry when the handler returns, a little later: the request
// is the revocation, not a use after it. A refused one (the token was
// already revoked) is a use.
func ownRevocation(e *tokenward.AuditEntry) bool {
	id, ok := strings.CutPrefix(e.Resource, "token:")
	return ok && id == e.TokenID && e.Action == "token.revoke" && e.Outcome == tokenward.OutcomeAllowed
}

func (m *Monitor) stateOf(id string, at time.Time) *tokenState {
	s := m.state[id]
	if s == nil {
		s = &tokenState{FirstSeen: at, LastSeen: at, Uses: make(map[useKey]time.Time)}
		m.state[id] = s
	}
	return s
}

// observeRate counts e in its minute and fires when the minute crosses the
// threshold; see docs/monitoring.md for the math.
func (m *Monitor) observeRate(out []Anomaly, s *tokenState, e *tokenward.AuditEntry) []Anomaly {
	minute := e.Time.Unix() / 60
	threshold := max(m.cfg.RateFloor, m.cfg.RateMultiplier*s.RateEWMA)
	if minute > s.Minute {
		if s.MinuteCount > 0 {
			// Fold the closed minute in, capped at the threshold so one burst
			// does not teach the baseline that bursts are normal.
			c := min(float64(s.MinuteCount), threshold)
			if s.ActiveMinute == 0 {
				s.RateEWMA = c
			} else {
				s.RateEWMA = m.cfg.RateAlpha*c + (1-m.cfg.RateAlpha)*s.RateEWMA
			}
			s.ActiveMinute++
			threshold = max(m.cfg.RateFloor, m.cfg.RateMultiplier*s.RateEWMA)
		}
		s.Minute, s.MinuteCount, s.MinuteFired = minute, 0, false
		s.MinuteFirst = evidenceOf(e)
	}
	s.MinuteCount++
	if !s.MinuteFired && float64(s.MinuteCount) > threshold {
		s.MinuteFired = true
		out = m.fire(out, s, RuleRateBurst, e, e.TokenID, "",
			fmt.Sprintf("%d requests in one minute; baseline %.1f/min, threshold max(%.0f, %.0f x baseline) = %.0f", s.MinuteCount, s.RateEWMA, m.cfg.RateFloor, m.cfg.RateMultiplier, threshold),
			s.MinuteFirst, evidenceOf(e))
	}
	return out
}

// observeIP counts a denied request from one source host: an IPv4
// address, or an IPv6 /64 (a host picks any address of its /64, so
// counting per IPv6 address lets one host probe without end).
func (m *Monitor) observeIP(addr netip.Addr, e *tokenward.AuditEntry) *Anomaly {
	key := addr
	if !addr.Is4() {
		p, _ := addr.Prefix(64)
		key = p.Addr()
	}
	s := m.ips[key]
	if s == nil {
		if len(m.ips) >= m.cfg.MaxIPs {
			// Full: evict an arbitrary entry (map order) to stay bounded.
			for k := range m.ips {
				delete(m.ips, k)
				break
			}
		}
		s = &ipState{}
		m.ips[key] = s
	}
	s.Last = e.Time
	if !s.Denied.push(m.cfg.DeniedPerIP, e.Time, evidenceOf(e), m.cfg.DeniedWindow) {
		return nil
	}
	if !s.Fired.IsZero() && e.Time.Sub(s.Fired) < m.cfg.Cooldown {
		return nil
	}
	s.Fired = e.Time
	from := addr.String()
	if !addr.Is4() {
		from = key.String() + "/64"
	}
	i := ruleIndex(RuleDeniedBurstIP)
	m.fired[i].Add(1)
	return &Anomaly{
		Rule: RuleDeniedBurstIP, Severity: ruleSeverity[RuleDeniedBurstIP], Time: e.Time,
		TokenID: e.TokenID, SourceIP: addr.String(),
		Explanation: fmt.Sprintf("%d denied requests from %s within %s: someone is probing the API", m.cfg.DeniedPerIP, from, m.cfg.DeniedWindow),
		Evidence:    s.Denied.evidence(),
		Suspend:     false, // an IP is not a token: nothing to suspend
	}
}

// fire appends an anomaly unless the rule fired for this token within the
// cooldown, before or after e: entries of concurrent requests (and of
// servers sharing an audit table) reach Observe a little out of time order.
func (m *Monitor) fire(out []Anomaly, s *tokenState, r RuleID, e *tokenward.AuditEntry, tokenID, resource, why string, ev ...Evidence) []Anomaly {
	i := ruleIndex(r)
	if last := s.Fired[i]; !last.IsZero() {
		if d := e.Time.Sub(last); d < m.cfg.Cooldown && d > -m.cfg.Cooldown {
			return out
		}
	}
	s.Fired[i] = e.Time
	m.fired[i].Add(1)
	name := ""
	if info := m.tokens[tokenID]; info != nil {
		name = info.Name
	} else if tokenID == e.TokenID {
		name = e.TokenName
	}
	return append(out, Anomaly{
		Rule: r, Severity: ruleSeverity[r], Time: e.Time,
		TokenID: tokenID, TokenName: name, SourceIP: e.SourceIP, Resource: resource,
		Explanation: why, Evidence: ev,
		Suspend: m.policy[i] == ActionSuspend,
	})
}

// Observed returns the number of entries observed (a Prometheus counter).
func (m *Monitor) Observed() uint64 { return m.observed.Load() }

// AnomalyCount returns how often rule r fired (a Prometheus counter with the
// rule id as its only label; never a secret or token name).
func (m *Monitor) AnomalyCount(r RuleID) uint64 {
	i := ruleIndex(r)
	if i < 0 {
		return 0
	}
	return m.fired[i].Load()
}

// TrackedTokens returns how many tokens have state (a Prometheus gauge).
func (m *Monitor) TrackedTokens() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.state)
}
