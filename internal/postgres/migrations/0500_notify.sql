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

CREATE TRIGGER keyring_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON keyring
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER projects_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON projects
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER environments_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON environments
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER data_keys_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON data_keys
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER secrets_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON secrets
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER secret_versions_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON secret_versions
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER secret_labels_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON secret_labels
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER oidc_bindings_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON oidc_bindings
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
-- Every column but last_used_at and last_used_ip.
CREATE TRIGGER tokens_change AFTER INSERT OR DELETE OR TRUNCATE ON tokens
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
CREATE TRIGGER tokens_update AFTER UPDATE OF id, hash, name, kind, owner, created_by, grants, ci, created_at, expires_at, revoked_at ON tokens
	FOR EACH STATEMENT EXECUTE FUNCTION tokenward_notify_change();
