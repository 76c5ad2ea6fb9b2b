-- The orders table as the order processor uses it, for the sandbox, the tests and the benchmark; in production
-- only the index below is ours to add (it is what makes include/sql/order_backlog_check/order_backlog.sql cheap).
-- Runs on PostgreSQL and SQLite; safe to run again.
CREATE TABLE IF NOT EXISTS orders (
    id          BIGINT PRIMARY KEY,
    customer    TEXT NOT NULL,
    status      TEXT NOT NULL,          -- new | processing | processed | failed
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    processed_at TIMESTAMP WITH TIME ZONE
);

-- Migration 001 (order_backlog_check): partial index over the outstanding orders only. Small (the backlog, not the
-- history) and it covers the backlog query: count, min(created_at) and the overdue filter need nothing else.
-- On a live PostgreSQL table create it with CREATE INDEX CONCURRENTLY (outside a transaction) instead.
CREATE INDEX IF NOT EXISTS orders_outstanding_created_at_idx
    ON orders (created_at)
    WHERE status IN ('new', 'processing');
