"""Alert intake: Prometheus Alertmanager webhooks start the routed SOP DAG, once per firing alert and target.

Pure parts (no Airflow import, tested directly): :mod:`.models` (the Alertmanager v4 payload), :mod:`.routing`
(routes file, matchers, target keys, run ids, conf building), :mod:`.decisions` (severity P0-P3, environment and
channel, maintenance window, Slack messages), :mod:`.auth` (credential check).

Airflow-bound parts: :mod:`.store` (the intake's ledger, per-target locks and Slack outbox in the metadata DB),
:mod:`.service` (validate against the DAG's Params, create runs), :mod:`.worker` (posts the outbox, starts queued
alerts) and :mod:`.app` (the FastAPI app the plugin mounts in the API server at ``/toilless``).
"""
