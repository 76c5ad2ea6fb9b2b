"""The smallest DAG file: the baseline the parse-cost benchmark divides by."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(schedule=None, catchup=False)
def trivial():
    @task
    def noop() -> None:
        return None

    noop()


trivial()
