"""Start an alert's runbook from another DAG's run, once: TriggerDagRunOperator with the run id the intake would use.

``triage_alert`` decides whether an alert is real; only then does its runbook start. The run id is the one the
intake derives from the alert (``toilless.intake.routing.run_id_for``), so a retried task, or the intake itself,
meets the existing run (``skip_when_already_exists``: the task is skipped, nothing starts twice).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk.exceptions import AirflowSkipException


class TriggerRunbookOperator(TriggerDagRunOperator):
    """Triggers the runbook named in an upstream task's XCom, when that task says to.

    :param decision_task_id: task whose XCom (a dict) has ``start_runbook`` (bool), ``runbook_dag_id``,
        ``runbook_run_id`` and ``runbook_conf``; ``start_runbook`` false skips this task.
    :return: the run id started (XCom), as TriggerDagRunOperator does.
    """

    template_fields = (*TriggerDagRunOperator.template_fields, "decision_task_id")

    def __init__(self, *, decision_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_dag_id", "unset")
        kwargs.setdefault("skip_when_already_exists", True)
        kwargs.setdefault("openlineage_inject_parent_info", False)  # the runbook's conf must pass its own Params
        super().__init__(**kwargs)
        self.decision_task_id = decision_task_id

    def execute(self, context: Any) -> Any:
        decision = context["ti"].xcom_pull(task_ids=self.decision_task_id) or {}
        if not decision.get("start_runbook"):
            raise AirflowSkipException(decision.get("skip_reason") or "the runbook is not to be started")
        self.trigger_dag_id = str(decision["runbook_dag_id"])
        self.trigger_run_id = str(decision["runbook_run_id"])
        self.conf = dict(decision.get("runbook_conf") or {})
        self.log.info("Starting runbook %s as run %s", self.trigger_dag_id, self.trigger_run_id)
        return super().execute(context)
