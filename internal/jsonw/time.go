package jsonw

import "time"

// maxFastUnix is 10000-01-01T00:00:00Z: MarshalJSON refuses years past 9999.
const maxFastUnix = 253402300800

// AppendTime appends t as time.Time's MarshalJSON writes it (RFC 3339 with
// nanoseconds, trailing zeros trimmed, quoted). It reports false, leaving b
// as it was, where MarshalJSON fails: a year outside [0, 9999] or a zone
// offset of a day or more. Times the stores read back (UTC, from 1970 on)
// take a path of integer arithmetic alone: the standard formatter works
// out the date twice more for the checks, a measurable part of writing an
// environment's 20 secrets.
func AppendTime(b []byte, t time.Time) ([]byte, bool) {
	if t.Location() != time.UTC {
		return appendTimeSlow(b, t)
	}
	sec := t.Unix()
	if sec < 0 || sec >= maxFastUnix {
		return appendTimeSlow(b, t)
	}
	// Civil date of a day count (Howard Hinnant's days_from_civil,
	// inverted), for days since 1970-01-01, all non-negative here.
	days, rem := sec/86400, sec%86400
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	year := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	if mp >= 10 {
		month = mp - 9
		year++
	}
	// "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
	var out [32]byte
	out[0] = '"'
	put2(out[1:], int(year/100))
	put2(out[3:], int(year%100))
	out[5] = '-'
	put2(out[6:], int(month))
	out[8] = '-'
	put2(out[9:], int(day))
	out[11] = 'T'
	put2(out[12:], int(rem/3600))
	out[14] = ':'
	put2(out[15:], int(rem%3600/60))
	out[17] = ':'
	put2(out[18:], int(rem%60))
	n := 20
	if ns := t.Nanosecond(); ns != 0 {
		out[20] = '.'
		put2(out[21:], ns/10_000_000)
		put2(out[23:], ns/100_000%100)
		put2(out[25:], ns/1000%100)
		put2(out[27:], ns/10%100)
		out[29] = byte('0' + ns%10)
		n = 30
		for out[n-1] == '0' {
			n--
		}
	}
	out[n], out[n+1] = 'Z', '"'
	return append(b, out[:n+2]...), true
}

// put2 writes v, in [0, 99], as two decimal digits.
func put2(b []byte, v int) {
	b[0], b[1] = byte('0'+v/10), byte('0'+v%10) // #nosec G115 -- v is in [0, 99]: both digits are in ['0', '9']
}

// appendTimeSlow is AppendTime through the standard formatter, with the
// checks MarshalJSON makes.
func appendTimeSlow(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}
