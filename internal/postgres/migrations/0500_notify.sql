-- The change clock (notify.go): every statement that changes a table whose
-- rows a server caches sends a notification, delivered to every listening
-- server when its transaction commits (identical ones of one transaction
-- are delivered once). PostgreSQL only, and no table: SQLite's read cache
-- learns of commits from its WAL index instead. Not on a token's last use
-- (batched touches from every server, and no cache holds it), not on the
-- audit trail, rotations or monitoring state (not cached).
CREATE FUNCTION tokenward_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('tokenward_change', '');
	RETURN NULL;
END
$$;

DO $$
DECLARE
	t TEXT;
BEGIN
	FOREACH t IN ARRAY ARRAY['keyring', 'projects', 'environments', 'data_keys', 'secrets', 'secret_versions', 'secret_labels', 'oidc_bindings'] LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change()', t || '_change', t);
	END LOOP;
END
$$;

-- Every column but last_used_at and last_used_ip.
CREATE TRIGGER tokens_change AFTER INSERT OR DELETE OR TRUNCATE ON tokens
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER tokens_update AFTER UPDATE OF id, hash, name, kind, owner, created_by, grants, ci, created_at, expires_at, revoked_at ON tokens
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
