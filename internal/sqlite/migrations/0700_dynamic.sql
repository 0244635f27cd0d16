-- Dynamic sources and their leases (tokenward.LeaseStore): credentials made
-- for one job and revoked when it ends or the lease runs out. Never a
-- credential: config holds the kind's settings (the admin connection URL is
-- a path to a sealed secret), a lease only the role name revocation needs.
-- Durations and times are nanoseconds (times Unix, 0 for none). A lease is
-- written in state 'creating' before its role is created, so a crash
-- between the two leaves a row the sweep finds.
CREATE TABLE dynamic_sources (
	project    TEXT NOT NULL,
	env        TEXT NOT NULL,
	name       TEXT NOT NULL,
	kind       TEXT NOT NULL,
	config     TEXT NOT NULL,
	ttl        INTEGER NOT NULL,
	max_ttl    INTEGER NOT NULL,
	max_leases INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (project, env, name)
);
CREATE TABLE leases (
	id              TEXT PRIMARY KEY,
	project         TEXT NOT NULL,
	env             TEXT NOT NULL,
	name            TEXT NOT NULL,
	kind            TEXT NOT NULL,
	role            TEXT NOT NULL UNIQUE,
	token_id        TEXT NOT NULL,
	job             TEXT NOT NULL,
	state           TEXT NOT NULL,
	created_at      INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL,
	max_expires_at  INTEGER NOT NULL,
	revoked_at      INTEGER NOT NULL,
	reason          TEXT NOT NULL,
	attempts        INTEGER NOT NULL,
	next_attempt_at INTEGER NOT NULL,
	error           TEXT NOT NULL
);
CREATE INDEX leases_by_source ON leases (project, env, name, state);
CREATE INDEX leases_by_token ON leases (token_id, state);
CREATE INDEX leases_by_state ON leases (state, expires_at);
