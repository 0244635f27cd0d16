-- An audit entry's CI facts (a JIT token's pipeline: repository, run id,
-- workflow…, some 500 bytes) are the same for every request the token
-- makes: they are stored once here, under the SHA-256 of their canonical
-- JSON, and an entry refers to them by ci_id (its own ci is then '{}'). An
-- entry without ci_id holds its CI inline, as every entry before this
-- migration does. The hash chain covers the facts wherever they are
-- stored, so a changed or deleted row here shows in verify.
--
-- No foreign key: its check on every audited request would cost more than
-- the row it saves (on PostgreSQL it also locks the referenced row), and
-- verify already catches a dangling reference.
CREATE TABLE audit_ci (
	id     INTEGER PRIMARY KEY,
	digest BLOB NOT NULL UNIQUE,
	ci     TEXT NOT NULL -- JSON object
);
ALTER TABLE audit_entries ADD COLUMN ci_id INTEGER;
