"""Kafka (AWS MSK) CPU headroom (`msk_cpu_headroom`): per-broker CPU over the last hour and 7 days, spike or steady
rise, who to ask or which broker type to recommend, and a resize only with two different approvers.

Pure modules: ``headroom`` (state, shape), ``topics`` (who drives a spike), ``sizing`` (type and cost), ``approvals``
(two-person rule), ``decide`` (the verdict), ``messages`` (Slack texts), ``resize`` (once per incident, through the
gate; the hook is passed in). ``steps`` holds the task bodies (the only Airflow import).
"""
