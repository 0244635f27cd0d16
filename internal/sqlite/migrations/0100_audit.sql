-- The audit trail. id is the insertion order, which verify walks (not seq),
-- so a reordering of rows stays visible.
CREATE TABLE audit_entries (
	id         INTEGER PRIMARY KEY,
	seq        INTEGER NOT NULL UNIQUE,
	time       INTEGER NOT NULL, -- Unix nanoseconds (entries hold microseconds)
	request_id TEXT NOT NULL DEFAULT '',
	token_id   TEXT NOT NULL DEFAULT '',
	token_name TEXT NOT NULL DEFAULT '',
	action     TEXT NOT NULL,
	resource   TEXT NOT NULL DEFAULT '',
	outcome    TEXT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	status     INTEGER NOT NULL DEFAULT 0,
	source_ip  TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	ci         TEXT NOT NULL DEFAULT '{}', -- JSON object
	meta       TEXT NOT NULL DEFAULT '{}', -- JSON object
	prev_hash  TEXT NOT NULL,
	hash       TEXT NOT NULL
);
CREATE INDEX audit_entries_token ON audit_entries (token_id, seq);
CREATE INDEX audit_entries_time ON audit_entries (time);

CREATE TABLE audit_checkpoints (
	id        INTEGER PRIMARY KEY,
	seq       INTEGER NOT NULL,
	hash      TEXT NOT NULL,
	time      INTEGER NOT NULL,
	key_id    TEXT NOT NULL,
	signature BLOB NOT NULL
);
