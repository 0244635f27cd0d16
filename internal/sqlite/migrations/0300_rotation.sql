-- Staged versions: PENDING and PREVIOUS labels (CURRENT is secrets.version).
CREATE TABLE secret_labels (
	project     TEXT NOT NULL,
	env         TEXT NOT NULL,
	name        TEXT NOT NULL,
	label       TEXT NOT NULL CHECK (label IN ('PENDING', 'PREVIOUS')),
	version     INTEGER NOT NULL,
	rotation_id TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project, env, name, label),
	FOREIGN KEY (project, env, name, version) REFERENCES secret_versions (project, env, name, version)
);

-- Rotation records: the persisted state machine. They never hold a value.
CREATE TABLE rotations (
	id              TEXT PRIMARY KEY,
	path            TEXT NOT NULL,
	rotator         TEXT NOT NULL,
	config          TEXT NOT NULL,
	grace           INTEGER NOT NULL,
	reason          TEXT NOT NULL,
	step            TEXT NOT NULL,
	attempt         INTEGER NOT NULL,
	current_version INTEGER NOT NULL,
	pending_version INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	next_at         INTEGER NOT NULL,
	finished_at     INTEGER NOT NULL,
	error           TEXT NOT NULL,
	rev             INTEGER NOT NULL
);
-- One rotation per secret at a time, enforced where it cannot race.
CREATE UNIQUE INDEX rotations_one_in_flight ON rotations (path) WHERE step NOT IN ('done', 'failed');
CREATE INDEX rotations_by_path ON rotations (path, created_at);

CREATE TABLE rotation_policies (
	path     TEXT PRIMARY KEY,
	every    INTEGER NOT NULL,
	cron     TEXT NOT NULL,
	jitter   INTEGER NOT NULL,
	grace    INTEGER NOT NULL,
	rotator  TEXT NOT NULL,
	config   TEXT NOT NULL,
	disabled INTEGER NOT NULL,
	last_at  INTEGER NOT NULL,
	next_at  INTEGER NOT NULL
);
CREATE INDEX rotation_policies_due ON rotation_policies (next_at) WHERE disabled = 0;
