package rotate

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/tokenward/tokenward"
)

// Policy says when and how a secret rotates.
type Policy struct {
	Path string `json:"secret"`
	// Every is the interval between rotations; exclusive with Cron.
	Every time.Duration `json:"every,omitempty"`
	// Cron is a standard 5-field schedule (UTC); exclusive with Every.
	Cron string `json:"cron,omitempty"`
	// Jitter spreads rotations: each secret's run is delayed by a fixed,
	// per-secret offset in [0, Jitter), so many secrets on one schedule do
	// not all rotate at once, and a restart does not reshuffle them.
	Jitter   time.Duration     `json:"jitter,omitempty"`
	Grace    time.Duration     `json:"grace"`
	Rotator  string            `json:"rotator"`
	Config   map[string]string `json:"config,omitempty"`
	Disabled bool              `json:"disabled,omitempty"`
	// LastAt is when the last scheduled rotation started; NextAt when the
	// next is due.
	LastAt time.Time `json:"last_at,omitzero"`
	NextAt time.Time `json:"next_at,omitzero"`
}

// Limits on policies.
const (
	MinEvery  = time.Hour
	MaxGrace  = 90 * 24 * time.Hour
	MaxJitter = 7 * 24 * time.Hour
)

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Validate checks p against the known rotators (nil: skip the rotator
// check) and the rotator's own config validation.
func (p *Policy) Validate(rotators map[string]Rotator) error {
	if p.Path == "" {
		return errInvalid("policy: secret path is empty")
	}
	switch {
	case p.Every != 0 && p.Cron != "":
		return errInvalid("policy %s: give either every or cron, not both", p.Path)
	case p.Every == 0 && p.Cron == "":
		return errInvalid("policy %s: give every or cron", p.Path)
	case p.Every != 0 && p.Every < MinEvery:
		return errInvalid("policy %s: every must be at least %s", p.Path, MinEvery)
	}
	if p.Cron != "" {
		s, err := cronParser.Parse(p.Cron)
		if err != nil {
			return errInvalid("policy %s: cron %q: %v", p.Path, p.Cron, err)
		}
		// A schedule like "0 0 30 2 *" parses but never fires; Next would
		// give the zero time, which is always due.
		if s.Next(time.Now().UTC()).IsZero() {
			return errInvalid("policy %s: cron %q never fires", p.Path, p.Cron)
		}
	}
	if p.Jitter < 0 || p.Jitter > MaxJitter {
		return errInvalid("policy %s: jitter must be between 0 and %s", p.Path, MaxJitter)
	}
	if p.Grace < 0 || p.Grace > MaxGrace {
		return errInvalid("policy %s: grace must be between 0 and %s", p.Path, MaxGrace)
	}
	if rotators != nil {
		r, ok := rotators[p.Rotator]
		if !ok {
			return errInvalid("policy %s: unknown rotator %q", p.Path, p.Rotator)
		}
		if err := r.Validate(p.Config); err != nil {
			return err
		}
	}
	return nil
}

// Next returns when the rotation after one at from is due, jitter included.
// It is the zero time for a cron schedule that never fires (Validate
// refuses those).
func (p *Policy) Next(from time.Time) time.Time {
	j := JitterFor(p.Path, p.Jitter)
	if p.Cron == "" {
		return from.Add(p.Every).Add(j)
	}
	s, err := cronParser.Parse(p.Cron)
	if err != nil {
		return time.Time{}
	}
	// A run at from was for a cron time at or after from-j: the next run
	// is the cron time after that one, plus the same jitter. Counting from
	// from itself would skip every cron time within j of the last one.
	next := s.Next(from.UTC().Add(-j))
	if next.IsZero() {
		return time.Time{}
	}
	return next.Add(j)
}

// JitterFor returns the fixed offset in [0, max) of the secret at path.
func JitterFor(path string, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := sha256.Sum256([]byte("tokenward-rotation-jitter\x00" + path))
	return time.Duration(binary.BigEndian.Uint64(h[:8]) % uint64(max)) // #nosec G115 -- the modulo is below max, an int64 duration
}

// ParseDuration parses a Go duration ("36h", "90m") or whole days and weeks
// ("30d", "2w"), the form policies are written in.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errInvalid("duration is empty")
	}
	if unit := s[len(s)-1]; unit == 'd' || unit == 'w' {
		n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
		if err != nil || strings.HasPrefix(s, "+") {
			return 0, errInvalid("duration %q: want a number of days or weeks, like 30d or 2w", tokenward.Printable(s))
		}
		days := n
		if unit == 'w' {
			days *= 7 // n < 2^32: no overflow
		}
		// The bound is on days, weeks included: 20000w passed a bound on
		// n and overflowed time.Duration (fuzzing found it).
		if days > uint64(100*365) {
			return 0, errInvalid("duration %q is longer than 100 years", tokenward.Printable(s))
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errInvalid("duration %q: want e.g. 30d, 2w, 12h or 90m", tokenward.Printable(s))
	}
	if d < 0 {
		return 0, errInvalid("duration %q is negative", tokenward.Printable(s))
	}
	return d, nil
}

// FormatDuration writes d the way ParseDuration reads it, preferring days.
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		if d%(7*day) == 0 {
			return strconv.FormatInt(int64(d/(7*day)), 10) + "w"
		}
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}
