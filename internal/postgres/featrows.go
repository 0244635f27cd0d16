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
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgerr"
)

// Row helpers of the audit, OIDC and monitor stores, written beside the
// core store's rows.go (a parallel branch) with its names and meaning:
// when both are merged, every declaration here but dbError and safeError
// is a duplicate of rows.go's, to delete.

// rowScanner is one row to scan: pgx.Row or pgx.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// queryer is what reads run on: the pool or a transaction.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// queryAll runs query and scans every row; no rows is an empty, non-nil
// slice (JSON []).
func queryAll[T any](ctx context.Context, q queryer, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}

// found returns v, or with an error the zero value and the error, where
// pgx.ErrNoRows becomes ENOTFOUND with the message given.
func found[T any](v T, err error, format string, args ...any) (T, error) {
	if err != nil {
		var zero T
		if errors.Is(err, pgx.ErrNoRows) {
			err = notFound(format, args...)
		}
		return zero, err
	}
	return v, nil
}

// changedRow is the error of a statement that must change a row: its own,
// or ENOTFOUND with the message given when it changed none.
func changedRow(tag pgconn.CommandTag, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound(format, args...)
	}
	return nil
}

// dbError describes a failed operation without pgx's own text, which can
// quote the connection string; the cause stays reachable for errors.Is
// (context ends) and pgerr.Code. Domain errors pass as they are.
func dbError(op string, err error) error {
	var te *tokenward.Error
	if err == nil || errors.As(err, &te) {
		return err
	}
	return fmt.Errorf("postgres: %s: %w", op, safeError{err})
}

type safeError struct{ err error }

func (e safeError) Error() string { return pgerr.Error(e.err) }
func (e safeError) Unwrap() error { return e.err }

// timeCol is the scan destination of a time column of Unix nanoseconds;
// NULL reads as the zero time.
func timeCol(t *time.Time) sql.Scanner { return (*nanoTime)(t) }

type nanoTime time.Time

func (t *nanoTime) Scan(src any) error {
	switch n := src.(type) {
	case nil:
		*t = nanoTime{}
	case int64:
		*t = nanoTime(time.Unix(0, n).UTC())
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
// is empty.
func jsonObject(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return string(b)
}

// jsonCol is the scan destination of a JSON text column decoded into v.
func jsonCol(v any) sql.Scanner { return jsonDest{v} }

type jsonDest struct{ v any }

func (d jsonDest) Scan(src any) error {
	s, ok := src.(string)
	if !ok {
		return fmt.Errorf("JSON column holds %T, not text", src)
	}
	return json.Unmarshal([]byte(s), d.v)
}
