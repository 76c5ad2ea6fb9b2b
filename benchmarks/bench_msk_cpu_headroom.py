"""msk_cpu_headroom: measuring a cluster through CloudWatch (moto server) and deciding for a large one.

1. measure: a 3-broker cluster with 8 topics seeded in moto (PutMetricData, 7 days hourly + the last hour per minute):
   ListMetrics for brokers and topics, then CpuUser + CpuSystem and per-topic BytesInPerSec for both windows the way
   ``measure_cpu`` does (GetMetricData, batched within 500 queries and 100,800 points per call). Wall time and the
   number of GetMetricData calls (goal: the minimum the two limits allow).
2. decide: 30 brokers and 2,000 topics of synthetic series (the pure topic_rises + decide): goal < 1 s.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from toilless.common.config import read_defaults
from toilless.sops.msk_cpu_headroom import decide, headroom, sizing, topics

BROKERS = 3
TOPICS = 8
BIG_BROKERS = 30
BIG_TOPICS = 2000


def _bench_measure() -> list[dict[str, Any]]:
    from sandbox.moto_server import MotoServer
    from sandbox.msk_cpu_headroom_data import flat, jump, seed_cluster_metrics

    with MotoServer() as moto:
        os.environ["AIRFLOW_CONN_BENCH_MSK"] = json.dumps(moto.connection())
        rates = {
            f"connect-component-{i}" if i < 3 else f"orders.t{i}": (jump(1e6, 5e6) if i < 3 else flat(1e6))
            for i in range(TOPICS)
        }
        seeded = seed_cluster_metrics(
            moto.client("cloudwatch"), "bench", brokers=BROKERS, profile="spike", topics=rates
        )
        from toilless.hooks.msk import TOPIC_DIMENSION, TOPIC_METRIC, MskHook

        hook = MskHook(aws_conn_id="bench_msk")
        calls = {"n": 0}
        hook.cloudwatch.meta.events.register(
            "before-call.cloudwatch.GetMetricData", lambda **_: calls.__setitem__("n", calls["n"] + 1)
        )
        started = time.perf_counter()
        now = datetime.now(UTC)
        hour, week = now - timedelta(hours=1), now - timedelta(days=7)
        brokers = hook.metric_dimension_values("CpuUser", "bench", "Broker ID")
        names = hook.metric_dimension_values(TOPIC_METRIC, "bench", TOPIC_DIMENSION)
        listed = time.perf_counter() - started
        hook.broker_cpu("bench", brokers, start=hour, end=now, period_seconds=60)
        hook.broker_cpu("bench", brokers, start=week, end=now, period_seconds=3600)
        topic_hour = hook.topic_bytes_in("bench", names, brokers, start=hour, end=now, period_seconds=60)
        topic_week = hook.topic_bytes_in("bench", names, brokers, start=week, end=now, period_seconds=3600)
        elapsed = time.perf_counter() - started
        del os.environ["AIRFLOW_CONN_BENCH_MSK"]
    rises = topics.topic_rises(topic_hour, topic_week, now=now.timestamp())
    # Two CPU metrics per broker and one series per topic and broker, each window in calls of at most 500 queries.
    minimum = 2 * math.ceil(2 * BROKERS / 500) + 2 * math.ceil(TOPICS * BROKERS / 500)
    return [
        {
            "benchmark": "msk_cpu_headroom",
            "metric": f"measure {BROKERS} brokers + {TOPICS} topics, 1 h + 7 d (moto server)",
            "value": f"{elapsed:.2f} s",
            "goal": "< 10 s",
            "met": elapsed < 10,
            "notes": (
                f"{seeded:,} data points seeded; ListMetrics {listed:.2f} s of it (moto scans its whole store); "
                f"{len(rises)} topics read; top riser {rises[0]['topic']}"
            ),
        },
        {
            "benchmark": "msk_cpu_headroom",
            "metric": "GetMetricData calls for that measurement",
            "value": str(calls["n"]),
            "goal": f"= {minimum} (the per-call limits' minimum)",
            "met": calls["n"] == minimum,
            "notes": f"{2 * BROKERS * 2 + TOPICS * BROKERS * 2} queries in all",
        },
    ]


def _bench_decide() -> list[dict[str, Any]]:
    now = datetime.now(UTC).timestamp()
    config = read_defaults("msk_cpu_headroom")
    hour = [(now - m * 60, 60.0 + m % 5) for m in range(1, 60)]
    week = [(now - h * 3600, 40.0 + 30.0 * (168 - h) / 168) for h in range(1, 169)]
    topic_hour = {f"topic-{i}": [(now - m * 60, 1e6 + i) for m in range(1, 60)] for i in range(BIG_TOPICS)}
    topic_week = {f"topic-{i}": [(now - h * 3600, 1e6) for h in range(2, 169)] for i in range(BIG_TOPICS)}
    started = time.perf_counter()
    rises = topics.topic_rises(topic_hour, topic_week, now=now)
    measured = {
        "cluster_arn": "arn",
        "cluster_name": "big",
        "instance_type": "kafka.m5.2xlarge",
        "broker_ids": [str(b) for b in range(1, BIG_BROKERS + 1)],
        "cpu_hour": {str(b): hour for b in range(1, BIG_BROKERS + 1)},
        "cpu_week": {str(b): week for b in range(1, BIG_BROKERS + 1)},
        "topic_rises": rises,
    }
    decision = decide.decide(
        measured,
        rules=headroom.HeadroomRules.from_config(config["rules"]),
        topic_rules=topics.TopicRules(),
        owners={"topic-1*": "team-a"},
        types=sizing.broker_types(config["broker_types"]),
        target_used_pct=60,
        now=now,
    )
    elapsed = time.perf_counter() - started
    return [
        {
            "benchmark": "msk_cpu_headroom",
            "metric": f"decide {BIG_BROKERS} brokers + {BIG_TOPICS:,} topics (1 h + 7 d series)",
            "value": f"{elapsed * 1000:.0f} ms",
            "goal": "< 1 s",
            "met": elapsed < 1,
            "notes": f"{decision['state']}, {decision['shape']} -> {decision['action']}",
        }
    ]


def run(work: Path) -> list[dict[str, Any]]:
    return [*_bench_measure(), *_bench_decide()]


if __name__ == "__main__":
    for row in run(Path("/tmp")):
        print(row)
