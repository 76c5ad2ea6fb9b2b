"""Alert triage (`triage_alert`): before a runbook acts or anyone is woken, decides whether an alert is noise (one
error: acknowledged and silenced in Alertmanager), a known cause (documented response, owner told) or real (the
runbook starts). docs/triage.md.

``rules`` (triage rules, offline PromQL check), ``decide`` (the verdict), ``silences`` (Alertmanager's silence
contract, the durable list) and ``messages`` are pure; ``steps`` holds the task bodies.
"""
