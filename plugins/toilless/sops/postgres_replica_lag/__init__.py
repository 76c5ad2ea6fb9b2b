"""PostgreSQL replica lag (`postgres_replica_lag`): how far each replica is behind its primary (seconds and bytes),
and why: the network / receive side (WAL receiver not streaming, WAL sent but not received), the replay side (replay
paused, a query on the replica holding replay, replay slow), or disk. It never fails over: it recommends, with the
evidence. The only actions are resuming a paused replay and cancelling the replica query that holds replay.

``settings`` (policy), ``diagnosis`` (lag, causes, recommendations, planned actions) and ``messages`` are pure;
``disk`` measures free space where a way is configured; ``steps`` holds the task bodies.
"""
