-- Web console sessions (tokenward.ConsoleSessionStore, internal/console),
-- in the database so that every server sharing it knows every session.
-- hash is the SHA-256 of the session id (the cookie's value), never the
-- id; sealed_token is the signed-in token sealed under a key derived from
-- the id, which only the browser holds. Times are Unix nanoseconds.
CREATE TABLE console_sessions (
	hash         BLOB PRIMARY KEY,
	token_id     TEXT NOT NULL,
	sealed_token BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
