"""A test DAG that fails on purpose, to show the failure notifier's routing for `test.` DAGs."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from toilless.common.dag_defaults import default_args


@dag(
    dag_id="test.failing_example",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["test"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-platform", retries=1, retry_delay=timedelta(seconds=0)),
)
def failing_example():
    @task
    def fail_on_purpose() -> None:
        raise RuntimeError("deliberate failure\nsecond line is not in the summary")

    fail_on_purpose()


failing_example()
