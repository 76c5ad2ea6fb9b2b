-- The connection limits of the server (reserved_connections exists from PostgreSQL 16 on: absent rows are fine)
-- and who this session is.
SELECT
    (SELECT setting::int FROM pg_settings WHERE name = 'max_connections') AS max_connections,
    (SELECT setting::int FROM pg_settings WHERE name = 'superuser_reserved_connections') AS superuser_reserved_connections,
    (SELECT setting::int FROM pg_settings WHERE name = 'reserved_connections') AS reserved_connections,
    (SELECT setting::int FROM pg_settings WHERE name = 'server_version_num') AS server_version_num,
    (SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout') AS idle_in_transaction_session_timeout,
    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS client_sessions,
    pg_backend_pid() AS own_pid,
    current_user AS own_user,
    now() AS measured_at;
