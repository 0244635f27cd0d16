-- Monitoring, as internal/sqlite/migrations/0400_monitor.sql has it.
CREATE TABLE anomalies (
	id          TEXT PRIMARY KEY,
	rule        TEXT NOT NULL,
	severity    TEXT NOT NULL,
	token_id    TEXT NOT NULL DEFAULT '',
	explanation TEXT NOT NULL,
	body        TEXT NOT NULL, -- the whole anomaly as JSON (evidence, resource, source ip)
	created_at  BIGINT NOT NULL,
	acked_at    BIGINT,
	acked_by    TEXT NOT NULL DEFAULT ''
);

CREATE INDEX anomalies_open ON anomalies (created_at) WHERE acked_at IS NULL;

-- The monitor's learned baselines and usage summaries (per token and per
-- secret: last use, counts by day), as its JSON snapshot.
CREATE TABLE monitor_state (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	snapshot   BYTEA NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE stale_notices (
	token_id    TEXT PRIMARY KEY,
	notified_at BIGINT NOT NULL
);

CREATE TABLE archived_envs (
	project     TEXT NOT NULL,
	env         TEXT NOT NULL,
	secrets     INTEGER NOT NULL,
	archived_at BIGINT NOT NULL,
	archived_by TEXT NOT NULL DEFAULT '',
	purge_at    BIGINT NOT NULL,
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
	expires_at  BIGINT,
	version     INTEGER NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	updated_by  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project, env, name),
	FOREIGN KEY (project, env) REFERENCES archived_envs (project, env) ON DELETE CASCADE
);

CREATE TABLE archived_secret_versions (
	project    TEXT NOT NULL,
	env        TEXT NOT NULL,
	name       TEXT NOT NULL,
	version    INTEGER NOT NULL,
	ciphertext BYTEA NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project, env, name, version),
	FOREIGN KEY (project, env, name) REFERENCES archived_secrets (project, env, name) ON DELETE CASCADE
);
