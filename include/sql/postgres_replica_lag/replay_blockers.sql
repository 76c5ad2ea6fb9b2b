-- On a replica: what the startup process (replay) waits for, and the client sessions holding it: those holding a lock
-- it waits for (pg_blocking_pids does not see the startup process's waits, pg_locks does), and, when it waits on a
-- snapshot or buffer-pin conflict, every session holding a snapshot (backend_xmin), oldest first.
WITH startup AS (
    SELECT pid, wait_event_type, wait_event FROM pg_stat_activity WHERE backend_type = 'startup'
),
wanted AS (
    SELECT l.* FROM pg_locks l JOIN startup s ON s.pid = l.pid WHERE NOT l.granted
),
lock_holders AS (
    SELECT DISTINCT h.pid
    FROM pg_locks h
    JOIN wanted w
      ON h.locktype = w.locktype
     AND h.database IS NOT DISTINCT FROM w.database
     AND h.relation IS NOT DISTINCT FROM w.relation
     AND h.page IS NOT DISTINCT FROM w.page
     AND h.tuple IS NOT DISTINCT FROM w.tuple
     AND h.transactionid IS NOT DISTINCT FROM w.transactionid
     AND h.classid IS NOT DISTINCT FROM w.classid
     AND h.objid IS NOT DISTINCT FROM w.objid
     AND h.objsubid IS NOT DISTINCT FROM w.objsubid
    WHERE h.granted AND h.pid <> w.pid
),
snapshot_holders AS (
    SELECT a.pid
    FROM pg_stat_activity a, startup s
    WHERE (left(s.wait_event, 16) = 'RecoveryConflict' OR s.wait_event_type = 'BufferPin')
      AND a.backend_type = 'client backend'
      AND a.backend_xmin IS NOT NULL
)
SELECT
    (SELECT wait_event_type FROM startup) AS startup_wait_event_type,
    (SELECT wait_event FROM startup) AS startup_wait_event,
    a.pid,
    a.backend_start,
    a.query_start,
    a.state,
    a.usename::text AS usename,
    a.application_name,
    coalesce(r.rolsuper, false) AS superuser,
    left(a.query, %(query_chars)s) AS query,
    extract(epoch FROM now() - a.query_start)::float AS query_seconds,
    CASE WHEN a.pid IN (SELECT pid FROM lock_holders) THEN 'lock' ELSE 'snapshot' END AS conflict
FROM startup
LEFT JOIN pg_stat_activity a
  ON a.pid IN (SELECT pid FROM lock_holders UNION SELECT pid FROM snapshot_holders)
 AND a.pid <> pg_backend_pid()
LEFT JOIN pg_roles r ON r.oid = a.usesysid
ORDER BY a.xact_start NULLS LAST
LIMIT %(max_rows)s;
