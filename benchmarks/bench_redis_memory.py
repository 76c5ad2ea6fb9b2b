"""redis_memory's key sampling on 1,000,000 keys in a real Redis: it stops at its time cap, its memory stays bounded
(tracemalloc peak of the sampler, and the process's peak RSS growth), and the whole diagnosis is fast.

The sampler is the DAG's own (``toilless.sops.redis_memory.sampling`` through ``toilless.hooks.redis``: SCAN with
COUNT, then MEMORY USAGE + PTTL + OBJECT IDLETIME in one pipeline per batch). The keys: 900,000 ``session:N`` and
100,000 ``cache:N`` (``DEBUG POPULATE``), plus 20 big hashes.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

from sandbox.redis_server import RedisServer

KEYS = 1_000_000
#: The default caps of include/config/redis_memory.yaml.
DEFAULT_CAPS = {"max_keys": 200_000, "max_seconds": 10.0}
#: A cap that the full pass would exceed: the sampler must stop near it.
TIGHT_SECONDS = 3.0
MEMORY_GOAL_MB = 100.0


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _fill(client: Any) -> None:
    client.execute_command("DEBUG", "POPULATE", 900_000, "session", 100)
    client.execute_command("DEBUG", "POPULATE", 100_000, "cache", 300)
    pipe = client.pipeline(transaction=False)
    for index in range(20):
        pipe.hset(f"report:{index}", mapping={f"field{field}": "v" * 100 for field in range(2_000)})
    pipe.execute()
    assert client.dbsize() >= KEYS


def _settings(**sampling: Any) -> dict[str, Any]:
    from toilless.common.config import read_defaults

    settings = read_defaults("redis_memory")
    settings["sampling"].update(sampling)
    return settings


def _sample(hook: Any, settings: dict[str, Any], *, traced: bool) -> tuple[dict[str, Any], float, float | None, float]:
    """One sampling pass: the result, seconds, tracemalloc peak MB (when ``traced``) and peak-RSS growth MB.

    tracemalloc slows Python several times over: the timed pass runs without it, the traced pass is a second one.
    """
    from toilless.sops.redis_memory.sampling import SampleLimits, sample_keys

    hwm_before = _rss_kib("VmHWM")
    rss_before = _rss_kib("VmRSS")
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    sample = sample_keys(
        lambda cursor, count: hook.scan(cursor, count=count),
        lambda keys: hook.key_facts(keys, with_size=True, with_idle=True),
        SampleLimits.from_settings(settings),
        with_idle=True,
    )
    seconds = time.perf_counter() - started
    peak_mb = None
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak_mb = peak / 1048576
    # The larger of: how far the process's peak RSS rose above what it was, and how much its RSS grew.
    rss_growth = max(0, _rss_kib("VmHWM") - max(hwm_before, rss_before), _rss_kib("VmRSS") - rss_before) / 1024
    return sample, seconds, peak_mb, rss_growth


def run(work: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with RedisServer() as server:
        with server.client() as client:
            started = time.perf_counter()
            _fill(client)
            fill_seconds = time.perf_counter() - started
        os.environ["AIRFLOW_CONN_REDIS_BENCH"] = json.dumps(server.airflow_connection())
        from toilless.hooks.redis import RedisHook
        from toilless.sops.redis_memory import health

        hook = RedisHook(redis_conn_id="redis_bench", client_name="toilless-bench")
        hook.dbsize()  # connect (and import what connecting imports) before measuring
        passes = [
            ("default caps (200,000 keys or 10 s)", _settings(**DEFAULT_CAPS), DEFAULT_CAPS["max_seconds"], True),
            (
                f"time cap {TIGHT_SECONDS:g} s, no key cap",
                _settings(max_keys=KEYS * 2, max_seconds=TIGHT_SECONDS),
                TIGHT_SECONDS,
                True,
            ),
            # Memory of a whole pass from the process's peak RSS only: traced, it would take minutes.
            ("whole keyspace (no cap reached)", _settings(max_keys=KEYS * 2, max_seconds=600), 600.0, False),
        ]
        for label, settings, cap, traced in passes:
            sample, seconds, _, rss_mb = _sample(hook, settings, traced=False)
            # The cap is checked after each SCAN batch: one batch (COUNT keys, one pipeline) may run past it.
            rows.append(
                {
                    "benchmark": "redis_memory",
                    "metric": f"key sampling on {KEYS:,} keys, {label}",
                    "value": f"{seconds:.2f} s, {sample['keys_sampled']:,} keys, stopped by {sample['stopped_by']}",
                    "goal": f"<= cap ({cap:g} s) + 1 s",
                    "met": seconds <= cap + 1.0,
                    "notes": f"{sample['keys_sampled'] / seconds:,.0f} keys/s; biggest {sample['biggest_keys'][0]['key']}",
                }
            )
            traced_mb = None
            if traced:
                _, _, traced_mb, traced_rss_mb = _sample(hook, settings, traced=True)
                rss_mb = max(rss_mb, traced_rss_mb)
            value = f"peak RSS growth {rss_mb:.1f} MB"
            if traced_mb is not None:
                value = f"tracemalloc peak {traced_mb:.1f} MB, " + value
            rows.append(
                {
                    "benchmark": "redis_memory",
                    "metric": f"sampler memory, {label}",
                    "value": value,
                    "goal": f"< {MEMORY_GOAL_MB:g} MB",
                    "met": (traced_mb or 0) < MEMORY_GOAL_MB and rss_mb < MEMORY_GOAL_MB,
                    "notes": f"{sample['prefixes_seen']} prefixes tracked; top {len(sample['biggest_keys'])} keys kept",
                }
            )
        # The diagnosis as the DAG runs it (INFO sections + assessment + sample), without the eviction-rate wait.
        settings = _settings(**DEFAULT_CAPS)
        started = time.perf_counter()
        memory, stats, keyspace, errorstats = (
            hook.info(section) for section in ("memory", "stats", "keyspace", "errorstats")
        )
        figures = health.figures(memory, stats, stats, keyspace, errorstats, seconds=1.0)
        health.assess(figures, settings["thresholds"])
        sample, *_ = _sample(hook, settings, traced=False)
        diagnosis_seconds = time.perf_counter() - started
        rows.append(
            {
                "benchmark": "redis_memory",
                "metric": f"diagnosis on {KEYS:,} keys (INFO + default-capped sample)",
                "value": f"{diagnosis_seconds:.2f} s",
                "goal": f"<= {DEFAULT_CAPS['max_seconds'] + 2:g} s",
                "met": diagnosis_seconds <= DEFAULT_CAPS["max_seconds"] + 2,
                "notes": f"plus eviction_sample_seconds (1 s); filling Redis took {fill_seconds:.1f} s",
            }
        )
        hook.close()
    return rows


if __name__ == "__main__":
    for row in run(Path("/tmp")):
        print(row)
