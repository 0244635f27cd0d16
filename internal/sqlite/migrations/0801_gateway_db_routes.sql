-- Database gateway routes (issue 17, docs/gateway-db.md): a client with a
-- token holding gateway:<name> is relayed to upstream (host:port) with the
-- credentials of the current version of project/env/secret. Times are
-- Unix nanoseconds like every other table.
CREATE TABLE gateway_db_routes (
	name       TEXT PRIMARY KEY,
	upstream   TEXT NOT NULL,
	project    TEXT NOT NULL,
	env        TEXT NOT NULL,
	secret     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);
