-- The audit seq up to which the leader has acted on anomalies, beside the
-- snapshot that holds it, so that a save compares it in one statement and
-- an old leader's late save never puts an older cursor over a newer one.
-- Taken from the stored snapshot; 0 when it has none or is unreadable.
ALTER TABLE monitor_state ADD COLUMN audit_cursor INTEGER NOT NULL DEFAULT 0;

UPDATE monitor_state SET audit_cursor = max(0, coalesce(json_extract(CAST(snapshot AS TEXT), '$.cursor'), 0))
WHERE json_valid(CAST(snapshot AS TEXT)) AND json_type(CAST(snapshot AS TEXT), '$.cursor') = 'integer';
