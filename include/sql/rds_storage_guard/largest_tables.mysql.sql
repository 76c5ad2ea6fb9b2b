-- Largest tables (data + indexes) of a MySQL/MariaDB server. Parameter: how many.
SELECT CONCAT(table_schema, '.', table_name) AS table_name,
       COALESCE(data_length, 0) + COALESCE(index_length, 0) AS total_bytes
FROM information_schema.tables
WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
ORDER BY total_bytes DESC
LIMIT %s
