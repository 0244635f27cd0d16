package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tokenward/tokenward/internal/sqlrow"
)

// The one way this package turns rows into values. A store method is a
// query and a scan function: scanX(rowScanner) reads one row of xCols,
// queryAll collects them, found maps no row to ENOTFOUND. Column
// encodings (times, JSON) each have one pair of helpers below.

// rowScanner is one row to scan, as the shared scan functions take it.
type rowScanner = sqlrow.Row

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

// maybeOne is found for a row that may be missing: no row is v's zero value
// (nil) without an error; another error is wrapped as "sqlite: what: …".
func maybeOne[T any](v T, err error, what string) (T, error) {
	if err != nil {
		var zero T
		if errors.Is(err, sql.ErrNoRows) {
			return zero, nil
		}
		return zero, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return v, nil
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
