"""PostgreSQL connection exhaustion (`postgres_connections`): how full the server's connection slots are and who holds
them (by state, application, user, client, age), which queries run long, which transactions sit idle, who blocks
whom; which sessions may be ended (idle in transaction, and idle only if configured, over the configured age, only of
allow-listed applications, never superusers, replication or Toilless itself, at most N per run) and the pool-size
advice per application.

``settings`` (policy and its validation), ``sessions`` (what a session is and whether it may be ended), ``blocking``
(lock chains), ``advice`` (usage and pools), ``messages`` (the report) are pure; ``steps`` holds the task bodies.
"""
