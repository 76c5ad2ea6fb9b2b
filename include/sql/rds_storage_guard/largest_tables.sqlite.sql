-- Largest tables (with their indexes) of a SQLite database, from the dbstat virtual table. Parameter: how many.
SELECT m.name AS table_name,
       SUM(s.pgsize) AS total_bytes
FROM sqlite_schema AS m
JOIN dbstat AS s ON s.name = m.name OR s.name IN (SELECT name FROM sqlite_schema WHERE tbl_name = m.name)
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
GROUP BY m.name
ORDER BY total_bytes DESC
LIMIT ?
