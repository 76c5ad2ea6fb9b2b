-- Lock waits and who holds them up: pg_blocking_pids only for sessions waiting on a lock (it takes the lock
-- manager's partition locks, so it is not called for every session).
WITH waiting AS (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by
    FROM pg_stat_activity
    WHERE wait_event_type = 'Lock'
),
involved AS (
    SELECT pid FROM waiting
    UNION
    SELECT unnest(blocked_by) FROM waiting
)
SELECT
    a.pid,
    coalesce(w.blocked_by, '{}'::int[]) AS blocked_by,
    a.state,
    a.usename::text AS usename,
    a.application_name,
    extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::float AS xact_seconds,
    left(a.query, %(query_chars)s) AS query
FROM pg_stat_activity a
JOIN involved i ON i.pid = a.pid
LEFT JOIN waiting w ON w.pid = a.pid
LIMIT %(max_rows)s;
