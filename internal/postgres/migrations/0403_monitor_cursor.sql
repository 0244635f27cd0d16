-- As internal/sqlite/migrations/0403_monitor_cursor.sql has it: the
-- cursor beside the snapshot, taken from it (0 when it has none or is
-- unreadable).
ALTER TABLE monitor_state ADD COLUMN audit_cursor BIGINT NOT NULL DEFAULT 0;

DO $$
BEGIN
	UPDATE monitor_state SET audit_cursor = greatest(0, (convert_from(snapshot, 'UTF8')::jsonb ->> 'cursor')::bigint)
	WHERE jsonb_typeof(convert_from(snapshot, 'UTF8')::jsonb -> 'cursor') = 'number';
EXCEPTION WHEN others THEN
	NULL; -- an unreadable snapshot keeps 0, as the server reads it
END $$;
