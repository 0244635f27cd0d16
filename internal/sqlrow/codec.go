// Package sqlrow is how tokenward's SQL backends (internal/sqlite,
// internal/postgres) turn records into rows and back: column lists, one scan
// function per record, and the column encodings both store the same way —
// times as Unix nanoseconds, JSON as text, booleans as 0 and 1 — so a row
// means the same thing in either database and copies between them as it is.
package sqlrow

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/jsonw"
)

// Row is one row to scan: *sql.Row, *sql.Rows, pgx.Row or pgx.Rows.
type Row interface{ Scan(dest ...any) error }

// Times are stored as Unix nanoseconds and read back in UTC. A nullable
// column holds the zero time as NULL (TimeArg, TimeCol); the rotation
// tables, NOT NULL throughout, hold it as 0 (Nanos, TimeCol0). Other
// columns always hold a time and are written with UnixNano.

// TimeArg is a nullable time column's argument.
func TimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// Nanos is a rotation time column's argument.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// BoundNanos is a time bound's argument, compared with a column of Unix
// nanoseconds: t.UnixNano, clamped to what an int64 holds (the years 1678
// to 2262). UnixNano wraps around outside them, so a bound in the year
// 2300 would compare as one in the 1700s.
func BoundNanos(t time.Time) int64 {
	switch {
	case t.Before(tokenward.MinTime):
		return math.MinInt64
	case t.After(tokenward.MaxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// TimeCol is the scan destination of a time column; NULL reads as the
// zero time.
func TimeCol(t *time.Time) sql.Scanner { return (*nanoTime)(t) }

// TimeCol0 is the scan destination of a rotation time column; 0 (and NULL)
// read as the zero time.
func TimeCol0(t *time.Time) sql.Scanner { return (*nanoTime0)(t) }

type (
	nanoTime  time.Time
	nanoTime0 time.Time
)

func (t *nanoTime) Scan(src any) error { return scanNanos((*time.Time)(t), src, false) }

func (t *nanoTime0) Scan(src any) error { return scanNanos((*time.Time)(t), src, true) }

func scanNanos(t *time.Time, src any, zero0 bool) error {
	switch n := src.(type) {
	case nil:
		*t = time.Time{}
	case int64:
		if n == 0 && zero0 {
			*t = time.Time{}
		} else {
			*t = time.Unix(0, n).UTC()
		}
	default:
		return fmt.Errorf("time column holds %T, not Unix nanoseconds", src)
	}
	return nil
}

// BoolArg is a boolean column's argument: 1 or 0.
func BoolArg(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BoolCol is the scan destination of a boolean column of 0 and 1.
func BoolCol(b *bool) sql.Scanner { return (*intBool)(b) }

type intBool bool

func (b *intBool) Scan(src any) error {
	switch n := src.(type) {
	case int64:
		*b = n != 0
	case int32:
		*b = n != 0
	default:
		return fmt.Errorf("boolean column holds %T, not 0 or 1", src)
	}
	return nil
}

// JSON columns hold text. Maps are written as {} when empty, so a column
// never holds null for "none".

// JSONText is a JSON column's argument.
func JSONText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// JSONObject is the argument of a JSON column of string pairs: {} when m
// is empty. It is on every audit row's path (the CI and Meta columns), so it
// writes the JSON by hand (jsonw, without HTML escaping); encoding/json reads
// it back alike.
func JSONObject(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	var buf [256]byte
	return string(jsonw.AppendStringMap(buf[:0], m))
}

// JSONCol is the scan destination of a JSON column decoded into v.
func JSONCol(v any) sql.Scanner { return jsonDest{v} }

type jsonDest struct{ v any }

func (d jsonDest) Scan(src any) error {
	switch b := src.(type) {
	case string:
		return json.Unmarshal([]byte(b), d.v)
	case []byte:
		return json.Unmarshal(b, d.v)
	}
	return fmt.Errorf("JSON column holds %T, not text", src)
}

// OrNilMap and OrNilSlice read an empty JSON collection as nil, the zero
// value callers compare with after a round trip.
func OrNilMap[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

func OrNilSlice[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}
