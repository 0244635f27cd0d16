-- OIDC trust bindings (issue 4). Lists and conditions are JSON; ttl is in
-- nanoseconds; times are Unix nanoseconds like every other table.
CREATE TABLE oidc_bindings (
	name       TEXT PRIMARY KEY,
	issuer     TEXT NOT NULL,
	audiences  TEXT NOT NULL,
	conditions TEXT NOT NULL,
	grants     TEXT NOT NULL,
	ttl        INTEGER NOT NULL,
	enabled    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);

-- Identity tokens already exchanged, by hash, until they expire: each is
-- exchanged at most once.
CREATE TABLE oidc_replay (
	id         TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_replay_expires ON oidc_replay (expires_at);
