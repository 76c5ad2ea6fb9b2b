"""A DAG file that breaks the house rules at parse time: a heavy import and a network call."""

from __future__ import annotations

import socket

import boto3  # noqa: F401 - the point: a heavy import at parse time
from airflow.sdk import dag, task


@dag(schedule=None, catchup=False)
def parse_time_io():
    @task
    def do_nothing() -> None:
        return None

    do_nothing()


socket.create_connection(("127.0.0.1", 9), timeout=1)
parse_time_io()
