"""rds_storage_guard: the decision over a fleet, and measuring a fleet through the real AWS APIs (moto server).

1. decide() for 1,000 instances with 7 days of 5-minute FreeStorageSpace samples (2,017 each): the pure forecast and
   decision must stay far below the 30-minute schedule (goal: < 2 s for the fleet).
2. measure 50 instances in moto the way measure_storage does (paginated describe_db_instances, GetMetricData batched
   500 queries per call, describe_events per instance): wall time and the number of GetMetricData calls (goal: one
   call per 500 instances, not one per instance).
"""

from __future__ import annotations

import math
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from toilless.sops.rds_storage_guard import forecasting, growth_plan, storage_policy

FLEET = 1000
SAMPLES_PER_DAY = 288  # 5-minute periods
MOTO_FLEET = 50


def _fleet(now: datetime) -> list[forecasting.InstanceStorage]:
    end = now.timestamp()
    fleet = []
    for index in range(FLEET):
        allocated = 100 + index % 900
        used_now = allocated * forecasting.GIB * (0.5 + (index % 50) / 100)
        growth = (index % 7) * 0.3 * forecasting.GIB
        points = tuple(
            (end - step * 300.0, allocated * forecasting.GIB - (used_now - growth * step / SAMPLES_PER_DAY))
            for step in range(7 * SAMPLES_PER_DAY + 1)
        )
        fleet.append(
            forecasting.InstanceStorage(
                instance_id=f"db-{index}",
                status="available",
                storage_type="gp3",
                allocated_gib=allocated,
                free_storage=points,
            )
        )
    return fleet


def _bench_decide() -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    fleet = _fleet(now)
    policy = storage_policy.StoragePolicy(auto_grow=True)
    started = time.perf_counter()
    decisions = [growth_plan.decide(instance, policy, now=now) for instance in fleet]
    elapsed = time.perf_counter() - started
    # Memory on its own pass: tracemalloc slows Python code several times.
    tracemalloc.start()
    for instance in fleet[:100]:
        growth_plan.decide(instance, policy, now=now)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    states = {
        state: sum(1 for d in decisions if d.state == state)
        for state in (forecasting.OK, forecasting.WARNING, forecasting.CRITICAL)
    }
    return [
        {
            "benchmark": "rds_storage_guard",
            "metric": f"decide() for {FLEET} instances x {7 * SAMPLES_PER_DAY + 1} samples",
            "value": f"{elapsed:.2f} s (peak {peak / 1e6:.1f} MB traced over 100 decisions)",
            "goal": "< 2 s",
            "met": elapsed < 2.0,
            "notes": f"states: {states}",
        }
    ]


def _bench_measure() -> list[dict[str, Any]]:
    from sandbox.moto_server import MotoServer
    from sandbox.rds_storage_guard_data import seed_rds_instance

    with MotoServer() as server:
        rds = server.client("rds")
        cloudwatch = server.client("cloudwatch")
        now = datetime.now(UTC)
        for index in range(MOTO_FLEET):
            seed_rds_instance(rds, cloudwatch, f"db-{index}", used_pct=60 + index % 35, days=7, now=now)

        import os

        # A Connection for this benchmark only, removed afterwards (the runner runs every benchmark in one process).
        conn_var = "AIRFLOW_CONN_BENCH_RDS_STORAGE_GUARD"
        os.environ[conn_var] = (
            '{"conn_type": "aws", "login": "x", "password": "x", "extra": {"region_name": "eu-central-1", '
            f'"endpoint_url": "{server.url}"}}}}'
        )
        try:
            from toilless.hooks.rds import RdsHook
            from toilless.sops.rds_storage_guard.expansion import last_storage_change

            hook = RdsHook(aws_conn_id="bench_rds_storage_guard")
            calls = {"get_metric_data": 0}

            def count(**kwargs: Any) -> None:
                calls["get_metric_data"] += 1

            hook.cloudwatch.meta.events.register("before-call.cloudwatch.GetMetricData", count)
            started = time.perf_counter()
            descriptions = hook.describe_instances()
            history = hook.free_storage_history(
                [d["DBInstanceIdentifier"] for d in descriptions],
                start=now - timedelta(days=7, hours=1),
                end=now + timedelta(minutes=5),
                period_seconds=3600,
            )
            for description in descriptions:
                last_storage_change(hook, description, now=now, lookback=timedelta(hours=7))
            elapsed = time.perf_counter() - started
        finally:
            os.environ.pop(conn_var, None)
        complete = sum(1 for points in history.values() if len(points) >= 7 * 24)
    expected_calls = math.ceil(MOTO_FLEET / 500)
    return [
        {
            "benchmark": "rds_storage_guard",
            "metric": f"measure {MOTO_FLEET} instances (moto server)",
            "value": f"{elapsed:.1f} s, {calls['get_metric_data']} GetMetricData call(s)",
            "goal": f"<= {expected_calls} GetMetricData call(s)",
            "met": calls["get_metric_data"] <= expected_calls and complete == MOTO_FLEET,
            "notes": f"{len(descriptions)} described, {complete} with a full 7-day history; moto, not AWS latency",
        }
    ]


def run(work: Path) -> list[dict[str, Any]]:
    return _bench_decide() + _bench_measure()


if __name__ == "__main__":
    for row in run(Path("/tmp")):
        print(row)
