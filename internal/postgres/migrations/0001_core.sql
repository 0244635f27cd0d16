-- The core tables, as internal/sqlite/migrations/0001_core.sql has them:
-- times are Unix nanoseconds (BIGINT), JSON is text, sealed values bytes.
CREATE TABLE keyring (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	sealed BYTEA NOT NULL
);

CREATE TABLE projects (
	name       TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL
);

CREATE TABLE environments (
	project    TEXT NOT NULL REFERENCES projects (name),
	name       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (project, name)
);

CREATE TABLE data_keys (
	project TEXT NOT NULL REFERENCES projects (name),
	version INTEGER NOT NULL,
	wrapped BYTEA NOT NULL,
	PRIMARY KEY (project, version)
);

CREATE TABLE secrets (
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
	FOREIGN KEY (project, env) REFERENCES environments (project, name)
);

CREATE TABLE secret_versions (
	project    TEXT NOT NULL,
	env        TEXT NOT NULL,
	name       TEXT NOT NULL,
	version    INTEGER NOT NULL,
	ciphertext BYTEA NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project, env, name, version),
	FOREIGN KEY (project, env, name) REFERENCES secrets (project, env, name)
);

CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	hash         BYTEA NOT NULL UNIQUE,
	name         TEXT NOT NULL,
	kind         TEXT NOT NULL,
	owner        TEXT NOT NULL DEFAULT '',
	created_by   TEXT NOT NULL DEFAULT '',
	grants       TEXT NOT NULL,
	ci           TEXT NOT NULL DEFAULT '{}',
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT,
	revoked_at   BIGINT,
	last_used_at BIGINT,
	last_used_ip TEXT NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
