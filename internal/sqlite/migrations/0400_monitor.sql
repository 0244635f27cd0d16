CREATE TABLE anomalies (
	id          TEXT PRIMARY KEY,
	rule        TEXT NOT NULL,
	severity    TEXT NOT NULL,
	token_id    TEXT NOT NULL DEFAULT '',
	explanation TEXT NOT NULL,
	body        TEXT NOT NULL, -- the whole anomaly as JSON (evidence, resource, source ip)
	created_at  INTEGER NOT NULL,
	acked_at    INTEGER,
	acked_by    TEXT NOT NULL DEFAULT ''
);

CREATE INDEX anomalies_open ON anomalies (created_at) WHERE acked_at IS NULL;

-- The monitor's learned baselines and usage summaries (per token and per
-- secret: last use, counts by day), as its JSON snapshot.
CREATE TABLE monitor_state (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	snapshot   BLOB NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE stale_notices (
	token_id    TEXT PRIMARY KEY,
	notified_at INTEGER NOT NULL
);

CREATE TABLE archived_envs (
	project     TEXT NOT NULL,
	env         TEXT NOT NULL,
	secrets     INTEGER NOT NULL,
	archived_at INTEGER NOT NULL,
	archived_by TEXT NOT NULL DEFAULT '',
	purge_at    INTEGER NOT NULL,
	PRIMARY KEY (project, env)
);

-- Archived secrets keep the columns of secrets and secret_versions (0001);
-- their rows move here, so every read of the core tables skips them.
CREATE TABLE archived_secrets (
	project     TEXT NOT NULL,
	env         TEXT NOT NULL,
	name        TEXT NOT NULL,
	owner       TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	tags        TEXT NOT NULL DEFAULT '[]',
	expires_at  INTEGER,
	version     INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	updated_by  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project, env, name),
	FOREIGN KEY (project, env) REFERENCES archived_envs (project, env) ON DELETE CASCADE
);

CREATE TABLE archived_secret_versions (
	project    TEXT NOT NULL,
	env        TEXT NOT NULL,
	name       TEXT NOT NULL,
	version    INTEGER NOT NULL,
	ciphertext BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project, env, name, version),
	FOREIGN KEY (project, env, name) REFERENCES archived_secrets (project, env, name) ON DELETE CASCADE
);
