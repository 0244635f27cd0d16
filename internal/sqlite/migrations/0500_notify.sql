-- PostgreSQL's migration 0500 adds the change notifications of several
-- servers on one database (triggers, no tables). SQLite needs none: its read
-- cache learns of commits from the WAL index. This file keeps the two
-- backends' schema_migrations equal, so tokenward migrate copies between them.
SELECT 1;
