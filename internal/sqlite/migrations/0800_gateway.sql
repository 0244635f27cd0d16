-- The credential-injecting gateway's routes (issue 17,
-- tokenward.GatewayRouteStore). A route holds secret paths, never values;
-- allow and allow_nets are JSON arrays of strings; timeout is in
-- nanoseconds; times are Unix nanoseconds like every other table.
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
	timeout     INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	created_by  TEXT NOT NULL DEFAULT ''
);
