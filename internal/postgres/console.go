package postgres

import (
	"context"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// The web console's sessions (tokenward.ConsoleSessionStore), shared by
// every server on the database.
var _ tokenward.ConsoleSessionStore = (*DB)(nil)

// CreateConsoleSession stores s under hash; ECONFLICT if one has it.
func (db *DB) CreateConsoleSession(ctx context.Context, hash [32]byte, s *tokenward.ConsoleSession) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO console_sessions (hash, `+sqlrow.ConsoleSessionCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		hash[:], s.TokenID, s.SealedToken, s.CreatedAt.UnixNano(), s.LastSeenAt.UnixNano(), s.ExpiresAt.UnixNano())
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "console session exists already")
	}
	return dbError("create console session", err)
}

// ConsoleSession returns the session stored under hash, or ENOTFOUND.
func (db *DB) ConsoleSession(ctx context.Context, hash [32]byte) (*tokenward.ConsoleSession, error) {
	s, err := sqlrow.ScanConsoleSession(db.pool.QueryRow(ctx, `SELECT `+sqlrow.ConsoleSessionCols+` FROM console_sessions WHERE hash = $1`, hash[:]))
	s, err = found(s, err, "console session not found")
	return s, dbError("console session", err)
}

// TouchConsoleSession moves a session's last use forward to at.
func (db *DB) TouchConsoleSession(ctx context.Context, hash [32]byte, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE console_sessions SET last_seen_at = greatest(last_seen_at, $1) WHERE hash = $2`, at.UnixNano(), hash[:])
	return dbError("touch console session", changedRow(tag, err, "console session not found"))
}

// DeleteConsoleSession removes a session, if there is one.
func (db *DB) DeleteConsoleSession(ctx context.Context, hash [32]byte) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM console_sessions WHERE hash = $1`, hash[:])
	return dbError("delete console session", err)
}

// DeleteTokenConsoleSessions removes every session of a token.
func (db *DB) DeleteTokenConsoleSessions(ctx context.Context, tokenID string) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM console_sessions WHERE token_id = $1`, tokenID)
	return int(tag.RowsAffected()), dbError("delete console sessions", err)
}

// SweepConsoleSessions removes every expired or idle session.
func (db *DB) SweepConsoleSessions(ctx context.Context, now, idleSince time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at < $2`, now.UnixNano(), idleSince.UnixNano())
	return int(tag.RowsAffected()), dbError("sweep console sessions", err)
}
