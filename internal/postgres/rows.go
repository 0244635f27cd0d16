package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The one way this package turns rows into values, as internal/sqlite's
// rows.go: a store method is a query and a scan function: scanX(rowScanner)
// reads one row of xCols, queryAll collects them, found maps no row to
// ENOTFOUND. Column encodings are the SQLite backend's, so a row copied
// between the backends means the same: times are Unix nanoseconds (NULL,
// or 0 in the rotation tables, for the zero time), JSON is text, booleans
// are the integers 0 and 1.

// rowScanner is one row to scan: a pgx.Row or pgx.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// queryer is what statements run on: the pool or a transaction.
type queryer interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// queryEach runs query and calls fn with every row, then reports the
// iteration's error.
func queryEach(ctx context.Context, q queryer, fn func(rowScanner) error, query string, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return dbError("query", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return dbError("scan", err)
		}
	}
	return dbError("query", rows.Err())
}

// queryAll runs query and scans every row; no rows is an empty, non-nil
// slice (JSON []).
func queryAll[T any](ctx context.Context, q queryer, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, dbError("query", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	return all, dbError("query", err)
}

// found returns v, or with an error the zero value and the error, where
// pgx.ErrNoRows (a QueryRow that matched nothing) becomes ENOTFOUND with
// the message given.
func found[T any](v T, err error, format string, args ...any) (T, error) {
	if err != nil {
		var zero T
		if errors.Is(err, pgx.ErrNoRows) {
			return zero, notFound(format, args...)
		}
		return zero, dbError("query", err)
	}
	return v, nil
}

// changedRow is the error of a statement that must change a row: its own,
// or ENOTFOUND with the message given when it changed none.
func changedRow(tag pgconn.CommandTag, err error, format string, args ...any) error {
	if err != nil {
		return dbError("exec", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(format, args...)
	}
	return nil
}

// timeArg is a nullable time column's argument: NULL for the zero time.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// nanos is a rotation time column's argument: 0 for the zero time.
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

// boolArg is a boolean column's argument: 1 or 0, as SQLite stores it.
func boolArg(b bool) int {
	if b {
		return 1
	}
	return 0
}

// boolCol is the scan destination of a boolean column of 0 and 1.
func boolCol(b *bool) sql.Scanner { return (*intBool)(b) }

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

// jsonText is a JSON column's argument.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// jsonObject is the argument of a JSON column of string pairs: {} when m
// is empty, so a column never holds null for "none".
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
	if s, ok := src.(string); ok {
		return json.Unmarshal([]byte(s), d.v)
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
