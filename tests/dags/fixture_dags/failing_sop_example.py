"""A non-test DAG that fails on purpose: its failure is a code failure routed to the owner's channel."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from toilless.common.dag_defaults import default_args


@dag(
    dag_id="failing_sop_example",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["test"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-orders", retries=2, retry_delay=timedelta(seconds=0)),
)
def failing_sop_example():
    @task
    def check_backlog() -> int:
        return 3

    @task
    def divide_backlog(count: int) -> float:
        return count / 0

    divide_backlog(check_backlog())


failing_sop_example()
