-- Database gateway routes, as internal/sqlite/migrations/0801_gateway_db_routes.sql
-- has them. Times are Unix nanoseconds like every other table. Not read
-- through a cache (every new session reads its route), so no notify
-- trigger.
CREATE TABLE gateway_db_routes (
	name       TEXT PRIMARY KEY,
	upstream   TEXT NOT NULL,
	project    TEXT NOT NULL,
	env        TEXT NOT NULL,
	secret     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);
