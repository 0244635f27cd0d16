package manifest

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units the manifest adds to time's s, m and h:
// rotation and expiry windows are spoken of in days and weeks.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// maxDurationLen bounds the text ParseDuration reads, so a manifest cannot
// make it do unbounded work or echo a long string.
const maxDurationLen = 32

var durationUnits = map[byte]time.Duration{
	's': time.Second,
	'm': time.Minute,
	'h': time.Hour,
	'd': Day,
	'w': Week,
}

// ParseDuration parses a manifest duration: one or more runs of decimal
// digits each followed by a unit s, m, h, d (24h) or w (7d), largest unit
// first or not, as in "30d", "12h", "2w" or "1d12h". Signs, fractions,
// spaces and a missing unit are errors, as is a total that overflows.
// Errors never echo the input: the caller knows where it came from.
func ParseDuration(s string) (time.Duration, error) {
	switch {
	case s == "":
		return 0, errors.New("empty duration")
	case len(s) > maxDurationLen:
		return 0, errors.New("duration is too long")
	}
	var total time.Duration
	for i := 0; i < len(s); {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return 0, errors.New("duration must start each part with a number (like 30d, 12h, 2w)")
		}
		if i == len(s) {
			return 0, errors.New("duration is missing a unit (s, m, h, d or w)")
		}
		unit, ok := durationUnits[s[i]]
		if !ok {
			return 0, errors.New("duration has an unknown unit (want s, m, h, d or w)")
		}
		n, err := strconv.ParseInt(s[start:i], 10, 64)
		if err != nil || n > int64(maxDuration/unit) {
			return 0, errors.New("duration is too large")
		}
		part := time.Duration(n) * unit
		if total > maxDuration-part {
			return 0, errors.New("duration is too large")
		}
		total += part
		i++
	}
	return total, nil
}

const maxDuration = time.Duration(1<<63 - 1)

// FormatDuration writes d in the manifest's form, largest units first
// ("30d", "1d12h", "90s"), in weeks only when d is whole weeks ("2w"), as
// people write them; the part below a second is dropped. Zero and negative
// durations are "0s". ParseDuration(FormatDuration(d)) == d for every whole
// number of seconds d >= 0.
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	if d%Week == 0 {
		return strconv.FormatInt(int64(d/Week), 10) + "w"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name byte
	}{{Day, 'd'}, {time.Hour, 'h'}, {time.Minute, 'm'}, {time.Second, 's'}} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteByte(u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}
