-- Archived secrets keep their staged-version labels (0300's secret_labels),
-- so a retired environment whose secrets were rotated restores whole.
CREATE TABLE archived_secret_labels (
	project     TEXT NOT NULL,
	env         TEXT NOT NULL,
	name        TEXT NOT NULL,
	label       TEXT NOT NULL,
	version     INTEGER NOT NULL,
	rotation_id TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project, env, name, label),
	FOREIGN KEY (project, env, name, version) REFERENCES archived_secret_versions (project, env, name, version) ON DELETE CASCADE
);
