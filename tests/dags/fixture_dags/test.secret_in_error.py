"""A test DAG whose task fails with secrets in its error: a real Connection's URI and a value registered with
Airflow's secrets masker. The failure notifier must post neither (tests/safety/test_secrets_in_errors.py)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from toilless.common.dag_defaults import default_args


@dag(
    dag_id="test.secret_in_error",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["test"],
    doc_md=__doc__,
    default_args=default_args(owner="sre-platform", retries=0, retry_delay=timedelta(seconds=0)),
    params={
        "conn_id": Param("orders_db", type="string", title="Connection whose URI the error quotes"),
        "registered_secret": Param("", type="string", title="Value registered with Airflow's secrets masker"),
    },
)
def secret_in_error():
    @task
    def connect_to_orders_db(**context) -> None:
        from airflow.sdk import BaseHook
        from airflow.sdk.log import mask_secret

        params = context["params"]
        if params["registered_secret"]:
            # What a task does with a secret it fetched itself (an API token from a vault, say).
            mask_secret(params["registered_secret"])
            raise RuntimeError(f"upstream refused token {params['registered_secret']} (HTTP 401)")
        connection = BaseHook.get_connection(params["conn_id"])
        # The classic leak: a driver error quoting the DSN it was given.
        raise ConnectionError(f"could not connect to {connection.get_uri()}: timeout expired")

    connect_to_orders_db()


secret_in_error()
