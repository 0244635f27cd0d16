-- audit_entries_token (token_id, seq) served no query: the audit search
-- filters on (token_id = ? OR token_name = ?), which neither SQLite nor
-- PostgreSQL answers from an index on one of the two columns, and orders by
-- seq, whose own index it walks. Every audited request paid for its B-tree
-- insert (about a third of an audit row's cost on SQLite).
DROP INDEX audit_entries_token;
