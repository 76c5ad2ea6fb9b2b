-- Sessions over the configured ages, oldest first: queries running longer than long_query_seconds, transactions idle
-- longer than idle_in_transaction_seconds, and (if asked) idle sessions older than idle_seconds. Every backend type
-- is returned on purpose: the SOP, not this query, decides what may be ended (and refuses walsenders, superusers...).
SELECT
    a.pid,
    a.backend_start,
    a.xact_start,
    a.query_start,
    a.state_change,
    a.state,
    a.backend_type,
    a.datname::text AS datname,
    a.usename::text AS usename,
    a.application_name,
    host(a.client_addr) AS client,
    a.wait_event_type,
    a.wait_event,
    left(a.query, %(query_chars)s) AS query,
    coalesce(r.rolsuper, false) AS superuser,
    coalesce(r.rolreplication, false) AS replication_role,
    extract(epoch FROM now() - a.state_change)::float AS state_seconds,
    extract(epoch FROM now() - a.query_start)::float AS query_seconds,
    extract(epoch FROM now() - a.xact_start)::float AS xact_seconds
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid <> pg_backend_pid()
  AND (
        (a.state = 'active' AND a.backend_type = 'client backend'
            AND a.query_start < now() - make_interval(secs => %(long_query_seconds)s))
     OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
            AND a.state_change < now() - make_interval(secs => %(idle_in_transaction_seconds)s))
     OR (%(include_idle)s AND a.state = 'idle'
            AND a.state_change < now() - make_interval(secs => %(idle_seconds)s))
  )
ORDER BY coalesce(a.xact_start, a.state_change, a.backend_start)
LIMIT %(max_rows)s;
