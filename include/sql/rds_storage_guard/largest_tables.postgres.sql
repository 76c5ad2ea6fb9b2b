-- Largest tables (with their indexes and TOAST) of a PostgreSQL database. Parameter: how many.
SELECT n.nspname || '.' || c.relname AS table_name,
       pg_total_relation_size(c.oid) AS total_bytes
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'  -- regex, not LIKE: the driver would read a percent sign as a placeholder
ORDER BY total_bytes DESC
LIMIT %s
