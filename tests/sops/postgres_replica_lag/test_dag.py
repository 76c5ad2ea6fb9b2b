"""postgres_replica_lag end to end (dag.test) on a real primary + streaming replica: a query holding replay is found,
cancelled through the gate, and reported; replay then catches up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.postgres_replica_lag_data import hold_replay
from sandbox.slack_sink import SlackSink
from tests.sops.postgres_replica_lag.conftest import PairEnv

pytestmark = pytest.mark.integration

DAG_ID = "postgres_replica_lag"


def test_query_holding_replay_is_cancelled_and_reported(
    run_dag: Callable[..., Any], slack_sink: SlackSink, pair_env: PairEnv
) -> None:
    env = pair_env
    env.configure()
    hold_replay(env.primary, env.replica, env.table, application="nightly_report")
    time.sleep(1.3)
    run = run_dag(DAG_ID)
    assert str(run.state) == "success"
    [message] = slack_sink.messages("infrastructure")
    text = message["text"]
    assert "Replica `replica-a`" in text
    assert "critical" in text
    assert "replay_blocked_by_query" in text
    assert "Done (cancel on `replica-a`): cancelled the query of pid" in text
    assert "nightly_report" in text
    assert "no automatic failover" in text
    connection = env.replica.connect("postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            deadline = time.monotonic() + 10
            while True:
                cursor.execute(f"SELECT count(*) FROM {env.table}")  # noqa: S608 - the test's own table
                if cursor.fetchone()[0] == 1:  # the TRUNCATE + INSERT were replayed
                    break
                assert time.monotonic() < deadline, "replay did not go on after the cancel"
                time.sleep(0.1)
    finally:
        connection.close()
