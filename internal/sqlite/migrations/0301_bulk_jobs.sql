-- Bulk rotation jobs (rotate.BulkJobStore): the report of a bulk rotation,
-- read by every server sharing the store. Never a value: items are JSON of
-- rotate.BulkItem (paths, statuses, reasons), error an API error message.
-- Times are Unix nanoseconds, 0 for none; updated_at is the running
-- server's heartbeat.
CREATE TABLE bulk_jobs (
	id          TEXT PRIMARY KEY,
	owner       TEXT NOT NULL,
	status      TEXT NOT NULL,
	planned     INTEGER NOT NULL,
	started_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL,
	items       TEXT NOT NULL,
	error       TEXT NOT NULL
);
CREATE INDEX bulk_jobs_by_status ON bulk_jobs (status, updated_at);
