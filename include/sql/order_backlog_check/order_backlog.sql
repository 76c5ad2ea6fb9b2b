-- Backlog of the order processor (order_backlog_check): how many orders are outstanding, how old the oldest is,
-- and how many are older than the age threshold.
--
-- Parameters are bound by the database driver, never formatted into this text:
--   %(overdue_before)s  timestamp: orders created before it count as overdue
-- (the DAG rewrites `%(name)s` to the driver's own style, e.g. `:name` for SQLite).
--
-- Cheap on a large table because of the partial index in orders_schema.sql:
--   CREATE INDEX orders_outstanding_created_at_idx ON orders (created_at) WHERE status IN ('new', 'processing');
-- The WHERE clause below must stay the index predicate, word for word, or PostgreSQL cannot use the index and
-- scans the whole table. PostgreSQL answers from the index alone (Index Only Scan), touching only the outstanding
-- orders, however many processed orders the table holds.
SELECT
    count(*) AS outstanding,
    min(created_at) AS oldest_created_at,
    count(*) FILTER (WHERE created_at < %(overdue_before)s) AS overdue
FROM orders
WHERE status IN ('new', 'processing')
