package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// The one way this package turns rows into values, as internal/sqlite's
// rows.go: a store method is a query and a scan function: scanX(rowScanner)
// reads one row of xCols, queryAll collects them, found maps no row to
// ENOTFOUND. Column encodings are the SQLite backend's, so a row copied
// between the backends means the same: times are Unix nanoseconds (NULL,
// or 0 in the rotation tables, for the zero time), JSON is text, booleans
// are the integers 0 and 1.

// rowScanner is one row to scan, as the shared scan functions take it.
type rowScanner = sqlrow.Row

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
	if err == nil {
		var all []T
		all, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
		if err == nil {
			return all, nil
		}
	}
	if isUnstorableText(err) {
		// A filter by a client's text no row can hold (?prefix=%00):
		// nothing matches, as in internal/sqlite, rather than a 500.
		return []T{}, nil
	}
	return nil, dbError("query", err)
}

// found returns v, or with an error the zero value and the error, where
// pgx.ErrNoRows (a QueryRow that matched nothing) becomes ENOTFOUND with
// the message given, as does a key no row can hold (isUnstorableText).
func found[T any](v T, err error, format string, args ...any) (T, error) {
	if err != nil {
		var zero T
		if errors.Is(err, pgx.ErrNoRows) || isUnstorableText(err) {
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
