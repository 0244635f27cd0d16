package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The one way this package turns rows into values. A store method is a
// query and a scan function: scanX(rowScanner) reads one row of xCols,
// queryAll collects them, found maps no row to ENOTFOUND. Column
// encodings (times, JSON) each have one pair of helpers below.

// rowScanner is one row to scan: *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// queryer is what reads run on: the read pool, the write connection or a
// transaction.
type queryer interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// queryEach runs query and calls fn with every row, then reports the
// iteration's error.
func queryEach(ctx context.Context, q queryer, fn func(rowScanner) error, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// queryAll runs query and scans every row; no rows is an empty, non-nil
// slice (JSON []).
func queryAll[T any](ctx context.Context, q queryer, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	out := []T{}
	err := queryEach(ctx, q, func(r rowScanner) error {
		v, err := scan(r)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// found returns v, or with an error the zero value and the error, where
// sql.ErrNoRows (a QueryRow that matched nothing) becomes ENOTFOUND with
// the message given.
func found[T any](v T, err error, format string, args ...any) (T, error) {
	if err != nil {
		var zero T
		if errors.Is(err, sql.ErrNoRows) {
			err = notFound(format, args...)
		}
		return zero, err
	}
	return v, nil
}

// changedRow is the error of a statement that must change a row: its own,
// or ENOTFOUND with the message given when it changed none.
func changedRow(res sql.Result, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound(format, args...)
	}
	return nil
}

// Times are stored as Unix nanoseconds and read back in UTC. A nullable
// column holds the zero time as NULL (timeArg, timeCol); the rotation
// tables, NOT NULL throughout, hold it as 0 (nanos, timeCol0). Other
// columns always hold a time and are written with UnixNano.

// timeArg is a nullable time column's argument.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// nanos is a rotation time column's argument.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// timeCol is the scan destination of a time column; NULL reads as the
// zero time.
func timeCol(t *time.Time) sql.Scanner { return (*nanoTime)(t) }

// timeCol0 is the scan destination of a rotation time column; 0 (and NULL)
// read as the zero time.
func timeCol0(t *time.Time) sql.Scanner { return (*nanoTime0)(t) }

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

// JSON columns hold text. Maps are written as {} when empty, so a column
// never holds null for "none".

// jsonText is a JSON column's argument.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// jsonObject is the argument of a JSON column of string pairs: {} when m
// is empty.
func jsonObject(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return string(b)
}

// jsonCol is the scan destination of a JSON column decoded into v.
func jsonCol(v any) sql.Scanner { return jsonDest{v} }

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

// orNilMap and orNilSlice read an empty JSON collection as nil, the zero
// value callers compare with after a round trip.
func orNilMap[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

func orNilSlice[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}
