-- OIDC trust bindings, as internal/sqlite/migrations/0200_oidc.sql has
-- them. Lists and conditions are JSON text; ttl is in nanoseconds; times
-- are Unix nanoseconds like every other table; enabled is an integer so
-- rows copy between the backends as they are.
CREATE TABLE oidc_bindings (
	name       TEXT PRIMARY KEY,
	issuer     TEXT NOT NULL,
	audiences  TEXT NOT NULL,
	conditions TEXT NOT NULL,
	grants     TEXT NOT NULL,
	ttl        BIGINT NOT NULL,
	enabled    INTEGER NOT NULL, -- 0 or 1, as SQLite stores a bool
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);

-- Identity tokens already exchanged, by hash, until they expire: each is
-- exchanged at most once, across every server on the database.
CREATE TABLE oidc_replay (
	id         TEXT PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_replay_expires ON oidc_replay (expires_at);
