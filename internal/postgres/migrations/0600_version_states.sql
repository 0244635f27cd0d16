-- Vault KV v2's version states (tokenward.VersionDeleteStore): a deleted
-- version keeps its ciphertext until undeleted; a destroyed one's
-- ciphertext is erased (empty). NULL: not deleted, not destroyed. Archived
-- versions keep theirs.
ALTER TABLE secret_versions ADD COLUMN deleted_at BIGINT;
ALTER TABLE secret_versions ADD COLUMN destroyed_at BIGINT;
ALTER TABLE archived_secret_versions ADD COLUMN deleted_at BIGINT;
ALTER TABLE archived_secret_versions ADD COLUMN destroyed_at BIGINT;
