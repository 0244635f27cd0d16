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

// ScheduleError is a schedule refused by ValidateSchedule. Msg names the
// field and its limit, never its value (a value pasted into the wrong key
// of a manifest may be a secret); Field lets a manifest show it there.
type ScheduleError struct {
	Field string // every, cron, jitter or grace
	Msg   string
}

func (e *ScheduleError) Error() string { return e.Msg }

// Unwrap lets tokenward.ErrorCode see a schedule error as EINVALID.
func (e *ScheduleError) Unwrap() error {
	return &tokenward.Error{Code: tokenward.EINVALID, Message: e.Error()}
}

// ValidateSchedule checks a policy's schedule: every or cron, not both; at
// least MinEvery between two runs, for cron too (each run mints a new
// upstream credential); and a grace period shorter than that: a rotation
// is in flight until its grace ends, so a run due during it is skipped.
// Policy.Validate and the manifest (tokenward.yaml) both use it. Its error
// is a *ScheduleError.
func ValidateSchedule(every time.Duration, cronSpec string, jitter, grace time.Duration) error {
	interval, field := every, "every"
	switch {
	case every != 0 && cronSpec != "":
		return &ScheduleError{"every", "give either every or cron, not both"}
	case every == 0 && cronSpec == "":
		return &ScheduleError{"every", "give every or cron"}
	case every < 0:
		return &ScheduleError{"every", "every must be positive"}
	case every != 0 && every < MinEvery:
		return &ScheduleError{"every", "every must be at least " + FormatDuration(MinEvery)}
	}
	if cronSpec != "" {
		sched, err := cronParser.Parse(cronSpec)
		spec, ok := sched.(*cron.SpecSchedule)
		// robfig/cron reads a TZ= prefix whatever the parser's fields:
		// schedules are in UTC, so a time zone (and its DST) is refused.
		if err != nil || !ok || spec.Location != time.Local {
			return &ScheduleError{"cron", "cron is not a 5-field cron expression (minute hour day-of-month month day-of-week, in UTC)"}
		}
		// A schedule like "0 0 30 2 *" parses but never fires; Next would
		// give the zero time, which is always due.
		if spec.Next(time.Now().UTC()).IsZero() {
			return &ScheduleError{"cron", "cron never fires"}
		}
		field = "cron"
		interval = cronShortestGap(spec, max(MinEvery, grace+time.Nanosecond))
		if interval < MinEvery {
			return &ScheduleError{"cron", "cron fires as often as every " + FormatDuration(interval) + "; rotations must be at least " + FormatDuration(MinEvery) + " apart (each mints a new upstream credential)"}
		}
	}
	if jitter < 0 || jitter > MaxJitter {
		return &ScheduleError{"jitter", "jitter must be between 0 and " + FormatDuration(MaxJitter)}
	}
	if grace < 0 || grace > MaxGrace {
		return &ScheduleError{"grace", "grace must be between 0 and " + FormatDuration(MaxGrace)}
	}
	if grace >= interval {
		between := "every (" + FormatDuration(interval) + ")"
		if field == "cron" {
			between = "the shortest time between two runs of the cron schedule (" + FormatDuration(interval) + ")"
		}
		return &ScheduleError{"grace", "grace must be shorter than " + between + ": a rotation is in flight until its grace ends, and a run due before then is skipped"}
	}
	return nil
}

// cronShortestGap returns the shortest time between two runs of s, or
// the first gap it finds shorter than enough: it need not look further.
// Every day that fires, fires at the same times, so the shortest gap is
// within a day or from a day's last run to the next firing day's first.
func cronShortestGap(s *cron.SpecSchedule, enough time.Duration) time.Duration {
	var times []time.Duration // of day, in order
	for h := range 24 {
		for m := range 60 {
			if s.Hour&(1<<uint(h)) != 0 && s.Minute&(1<<uint(m)) != 0 {
				times = append(times, time.Duration(h)*time.Hour+time.Duration(m)*time.Minute)
			}
		}
	}
	if len(times) == 0 { // not from the parser, which needs a minute and an hour
		return 0
	}
	const day = 24 * time.Hour
	gap := time.Duration(1<<63 - 1)
	for i := 1; i < len(times); i++ {
		gap = min(gap, times[i]-times[i-1])
	}
	overnight := day - times[len(times)-1] + times[0] // to the next day's first
	if gap < enough || overnight >= enough {
		return min(gap, overnight)
	}
	// Walk the firing days (at midnight) over 28 years from 2001, in which
	// every calendar of days, weekdays and leap days occurs.
	days := *s
	days.Minute, days.Hour = 1, 1
	from := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := days.Next(from.Add(-time.Second))
	for end := from.AddDate(28, 0, 0); !prev.IsZero() && prev.Before(end); {
		next := days.Next(prev)
		if next.IsZero() {
			break
		}
		if g := next.Sub(prev) - day + overnight; g < gap {
			if gap = g; gap < enough {
				break
			}
		}
		prev = next
	}
	return gap
}

// Validate checks p against the known rotators (nil: skip the rotator
// check) and the rotator's own config validation.
func (p *Policy) Validate(rotators map[string]Rotator) error {
	if p.Path == "" {
		return errInvalid("policy: secret path is empty")
	}
	if err := ValidateSchedule(p.Every, p.Cron, p.Jitter, p.Grace); err != nil {
		return errInvalid("policy %s: %v", p.Path, err)
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

// NextAfterRun returns when the run after one that was due at scheduled
// (the policy's NextAt, jitter included) and ran at ran is due. An every
// schedule keeps its cadence: the next run is a whole number of intervals
// after scheduled, the first after ran, so the jitter shifts the cadence
// once instead of adding to every interval, a late tick does not delay
// the runs after it, and runs missed while no server ran are not made up.
// A cron schedule has its cadence in the cron times (Next).
func (p *Policy) NextAfterRun(scheduled, ran time.Time) time.Time {
	const far = 100 * 365 * 24 * time.Hour // a NextAt this old says nothing of a cadence
	late := ran.Sub(scheduled)
	if p.Cron != "" || p.Every <= 0 || scheduled.IsZero() || late < 0 || late > far {
		return p.Next(ran)
	}
	return scheduled.Add((late/p.Every + 1) * p.Every)
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

// FormatDuration writes d the way ParseDuration reads it, preferring days
// and weeks, and without zero units (1h, 1h30m, 30m, not 1h0m0s).
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		if d%(7*day) == 0 {
			return strconv.FormatInt(int64(d/(7*day)), 10) + "w"
		}
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s") // 30m0s → 30m
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m") // 1h0m → 1h
	}
	return s
}
