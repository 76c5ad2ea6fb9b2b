-- Client sessions counted by (state, application, user, client, age bucket); walsenders, autovacuum and background
-- workers have slots of their own and do not use max_connections.
SELECT
    coalesce(state, 'unknown') AS state,
    coalesce(nullif(application_name, ''), '(none)') AS application,
    coalesce(usename::text, '(none)') AS usename,
    coalesce(host(client_addr), 'local') AS client,
    CASE
        WHEN now() - backend_start < interval '1 minute' THEN '< 1 min'
        WHEN now() - backend_start < interval '10 minutes' THEN '1-10 min'
        WHEN now() - backend_start < interval '1 hour' THEN '10-60 min'
        WHEN now() - backend_start < interval '1 day' THEN '1-24 h'
        ELSE '> 1 day'
    END AS age,
    count(*) AS sessions
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3, 4, 5
ORDER BY sessions DESC
LIMIT %(max_groups)s;
