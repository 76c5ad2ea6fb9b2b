"""order_backlog_check: tells an overloaded order processor from a stuck or crashed/silent one, from the backlog in the
orders database and the processor's own log; notifies Ops (overloaded) or the developers (stuck, errors, silent);
restarts a stuck or silent processor once per incident when the action gate allows it; and verifies the recovery.

Pure modules: ``log_parsing`` (log lines -> run summary), ``log_files`` (rotated files, bounded reads), ``capacity``,
``verdict``, ``restart_policy`` (Params that tighten, the gate, once per incident), ``settings`` (a run's settings),
``messages`` (what Slack is told). ``steps`` holds the task bodies and is the only module here importing Airflow.
"""
