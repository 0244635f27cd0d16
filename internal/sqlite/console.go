package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlrow"
)

// The web console's sessions (tokenward.ConsoleSessionStore).
var _ tokenward.ConsoleSessionStore = (*DB)(nil)

// CreateConsoleSession stores s under hash; ECONFLICT if one has it.
func (db *DB) CreateConsoleSession(ctx context.Context, hash [32]byte, s *tokenward.ConsoleSession) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO console_sessions (hash, `+sqlrow.ConsoleSessionCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		hash[:], s.TokenID, s.SealedToken, s.CreatedAt.UnixNano(), s.LastSeenAt.UnixNano(), s.ExpiresAt.UnixNano())
	if isConstraint(err) {
		return tokenward.Errorf(tokenward.ECONFLICT, "console session exists already")
	}
	return err
}

// ConsoleSession returns the session stored under hash, or ENOTFOUND.
func (db *DB) ConsoleSession(ctx context.Context, hash [32]byte) (*tokenward.ConsoleSession, error) {
	s, err := sqlrow.ScanConsoleSession(db.read.QueryRowContext(ctx, `SELECT `+sqlrow.ConsoleSessionCols+` FROM console_sessions WHERE hash = ?`, hash[:]))
	return found(s, err, "console session not found")
}

// TouchConsoleSession moves a session's last use forward to at.
func (db *DB) TouchConsoleSession(ctx context.Context, hash [32]byte, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE console_sessions SET last_seen_at = max(last_seen_at, ?) WHERE hash = ?`, at.UnixNano(), hash[:])
	return changedRow(res, err, "console session not found")
}

// DeleteConsoleSession removes a session, if there is one.
func (db *DB) DeleteConsoleSession(ctx context.Context, hash [32]byte) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM console_sessions WHERE hash = ?`, hash[:])
	return err
}

// DeleteTokenConsoleSessions removes every session of a token.
func (db *DB) DeleteTokenConsoleSessions(ctx context.Context, tokenID string) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM console_sessions WHERE token_id = ?`, tokenID)
	if err != nil {
		return 0, err
	}
	return rowsAffected(res)
}

// SweepConsoleSessions removes every expired or idle session.
func (db *DB) SweepConsoleSessions(ctx context.Context, now, idleSince time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at <= ? OR last_seen_at < ?`, now.UnixNano(), idleSince.UnixNano())
	if err != nil {
		return 0, err
	}
	return rowsAffected(res)
}

func rowsAffected(res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	return int(n), err
}
