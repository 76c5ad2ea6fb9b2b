-- One session, re-read right before it is ended (same columns as long_sessions.sql).
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
WHERE a.pid = %(pid)s AND a.pid <> pg_backend_pid();
