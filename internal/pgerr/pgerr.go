// Package pgerr describes PostgreSQL errors without leaking what a
// connection string holds: pgx's connection errors can quote the whole DSN,
// password included.
package pgerr

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Error describes err by the server's message and SQLSTATE, the host of a
// failed connection, or a generic phrase; never by err.Error().
func Error(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return "cannot connect to " + ce.Config.Host
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timed out"
	}
	return "connection failed"
}

// Code is err's SQLSTATE, or "" when err is not from the server.
func Code(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
