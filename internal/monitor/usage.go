package monitor

import (
	"slices"
	"strings"
	"time"
)

// usageDays is how many days of daily counts are kept.
const usageDays = 32

// dayCounts is a ring of request counts per UTC day: O(1) to bump, bounded.
type dayCounts [usageDays]struct {
	Day int64 // unix day
	N   uint32
}

func unixDay(t time.Time) int64 { return t.Unix() / 86400 }

func (d *dayCounts) add(t time.Time) {
	day := unixDay(t)
	slot := &d[day%usageDays]
	if slot.Day != day {
		slot.Day, slot.N = day, 0
	}
	if slot.N < ^uint32(0) {
		slot.N++
	}
}

// DayCount is the number of requests on one UTC day.
type DayCount struct {
	Day   string `json:"day"` // 2006-01-02
	Count uint32 `json:"count"`
}

// list returns the days with requests in the usageDays-1 days up to the
// latest one counted, oldest first.
func (d *dayCounts) list() []DayCount {
	var latest int64
	for _, s := range d {
		latest = max(latest, s.Day)
	}
	var out []DayCount
	for _, s := range d {
		if s.N > 0 && latest-s.Day < usageDays-1 {
			out = append(out, DayCount{Day: time.Unix(s.Day*86400, 0).UTC().Format(time.DateOnly), Count: s.N})
		}
	}
	slices.SortFunc(out, func(a, b DayCount) int { return strings.Compare(a.Day, b.Day) })
	return out
}

// secretUsage is what the monitor keeps per secret read.
type secretUsage struct {
	LastAt    time.Time
	LastIP    string
	LastToken string
	Days      dayCounts
}

// SecretUsage is a secret's recent reads, for `secret list`.
type SecretUsage struct {
	Secret      string     `json:"secret"` // project/env/name
	LastAt      time.Time  `json:"last_at"`
	LastIP      string     `json:"last_ip,omitempty"`
	LastTokenID string     `json:"last_token_id,omitempty"`
	Daily       []DayCount `json:"daily"` // the last 31 days with reads
}

// SecretUsage returns the reads the monitor saw of one secret.
func (m *Monitor) SecretUsage(path string) (SecretUsage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.secrets[path]
	if s == nil {
		return SecretUsage{Secret: path}, false
	}
	return SecretUsage{Secret: path, LastAt: s.LastAt, LastIP: s.LastIP, LastTokenID: s.LastToken, Daily: s.Days.list()}, true
}

func (m *Monitor) observeSecretRead(path string, at time.Time, ip, token string) {
	m.pathBuf = append(m.pathBuf[:0], path...)
	m.observeSecretKey(at, ip, token)
}

// observeSecretKey counts a read of the secret whose path is in m.pathBuf.
// The map is indexed with string(m.pathBuf), which does not allocate: only
// a secret seen for the first time gets its path string.
func (m *Monitor) observeSecretKey(at time.Time, ip, token string) {
	s := m.secrets[string(m.pathBuf)]
	if s == nil {
		if len(m.secrets) >= m.cfg.MaxSecrets {
			return
		}
		s = &secretUsage{}
		m.secrets[string(m.pathBuf)] = s
	}
	if !at.Before(s.LastAt) {
		s.LastAt, s.LastIP, s.LastToken = at, ip, token
	}
	s.Days.add(at)
}

// RecordSecretReads counts one read of each named secret of project/env at
// at, for reads the audit entry does not itemize: an environment-wide read
// (run, export) names only project/env in its resource.
func (m *Monitor) RecordSecretReads(project, env string, names []string, at time.Time, ip, tokenID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range names {
		m.pathBuf = append(append(append(append(append(m.pathBuf[:0], project...), '/'), env...), '/'), n...)
		m.observeSecretKey(at, ip, tokenID)
	}
}
