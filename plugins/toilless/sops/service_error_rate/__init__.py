"""Service error rate (`service_error_rate`): a service answers too many 5xx or too slowly. Measures how widespread it
is first (5xx ratio and p95 latency per pod over the last hour, through Prometheus), then pod health and the
service's database and Redis, and decides noise (acknowledged and left), degraded or failing; restarts the Deployment
that owns unhealthy pods, scales a saturated one within bounds, or reports to the owning team with the evidence; and
verifies through the same PromQL after acting.

``settings`` (configuration, Params, PromQL checked offline), ``evidence`` (per-pod metrics, pod health),
``verdict`` (the judgement), ``messages`` (the report) are pure; ``steps`` holds the task bodies.
"""
