-- The credential-injecting gateway's routes, as
-- internal/sqlite/migrations/0800_gateway.sql has them. A route holds
-- secret paths, never values; allow and allow_nets are JSON text; timeout
-- is in nanoseconds; times are Unix nanoseconds like every other table.
CREATE TABLE gateway_routes (
	name        TEXT PRIMARY KEY,
	upstream    TEXT NOT NULL,
	secret      TEXT NOT NULL,
	user_secret TEXT NOT NULL DEFAULT '',
	inject      TEXT NOT NULL,
	allow       TEXT NOT NULL,
	rate        TEXT NOT NULL DEFAULT '',
	allow_nets  TEXT NOT NULL,
	ca_bundle   TEXT NOT NULL DEFAULT '',
	timeout     BIGINT NOT NULL,
	created_at  BIGINT NOT NULL,
	created_by  TEXT NOT NULL DEFAULT ''
);

-- Every server caches routes behind the change clock (0500_notify.sql): a
-- route created or deleted on one server is seen by the others' next call.
CREATE TRIGGER gateway_routes_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gateway_routes
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
