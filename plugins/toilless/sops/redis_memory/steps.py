"""Redis memory: the task bodies of dags/redis_memory.py, the only module of the SOP that touches Airflow (through
``toilless.common``: config and state are Variables, the report goes to Slack) and Redis (``toilless.hooks.redis``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from toilless.common import action_budget, gate
from toilless.common.config import load_config
from toilless.common.reporting import send_report
from toilless.common.state import read_state, write_state
from toilless.incidents import action_result
from toilless.sops.redis_memory import cleanup, health, report, sampling
from toilless.sops.redis_memory import settings as settings_module

if TYPE_CHECKING:
    from toilless.hooks.redis import RedisHook

log = logging.getLogger(__name__)

DAG_ID = "redis_memory"
TITLE = "Redis memory"
#: Run state (toilless.common.state): per Redis, the runs that acted (gate history) and each run's key budget.
STATE_KEY = f"toilless_{DAG_ID}_actions"


def _hook(settings: Mapping[str, Any]) -> RedisHook:
    from toilless.hooks.redis import RedisHook

    return RedisHook.from_settings(settings, dag_id=DAG_ID)


def target_of(settings: Mapping[str, Any]) -> str:
    return f"redis:{settings['redis_conn_id']}"


def resolve_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration (YAML + Variable) with the run's Params applied; bad input fails the run before any I/O.

    The Connection is checked here too (exists, is of type ``redis``): reading it touches no Redis.
    """
    resolved = settings_module.resolve(load_config(DAG_ID), params)
    _hook(resolved).check_connection()
    return resolved


def diagnose_memory(settings: Mapping[str, Any]) -> dict[str, Any]:
    """INFO memory/stats/keyspace/errorstats (stats twice, for the eviction rate) and a bounded key sample."""
    hook = _hook(settings)
    try:
        memory = hook.info("memory")
        stats_first = hook.info("stats")
        started = time.monotonic()
        time.sleep(float(settings["eviction_sample_seconds"]))
        stats_second = hook.info("stats")
        seconds = time.monotonic() - started
        keyspace = hook.info("keyspace")
        errorstats = hook.info("errorstats")
        measured = health.figures(memory, stats_first, stats_second, keyspace, errorstats, seconds=seconds)
        assessment = health.assess(measured, settings["thresholds"])
        with_idle = health.idle_time_tracked(measured.policy)
        sample = sampling.sample_keys(
            lambda cursor, count: hook.scan(cursor, count=count),
            lambda keys: hook.key_facts(keys, with_size=True, with_idle=with_idle),
            sampling.SampleLimits.from_settings(dict(settings)),
            with_idle=with_idle,
        )
    finally:
        hook.close()
    log.info("Redis %s: %s (%s)", settings["redis_conn_id"], assessment["level"], "; ".join(assessment["findings"]))
    return {"figures": measured.as_dict(), "assessment": assessment, "sample": sample}


def clean_idle_keys(
    settings: Mapping[str, Any], diagnosis: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """Expire or unlink idle keys without TTL under the configured prefixes, within the budget and the gate."""
    planned, reason = cleanup.cleanup_plan(settings, diagnosis["assessment"], diagnosis["figures"]["policy"])
    if not planned:
        log.info("No cleanup: %s", reason)
        return {"planned": False, "reason": reason, "acted": 0}
    run_id = str(context.get("run_id") or "manual")
    target = target_of(settings)
    options = settings["cleanup"]
    max_total = int(options["max_keys_per_run"])
    policy = gate.sop_gate_policy(load_config("toilless"), settings)
    action = f"{options['action']} idle keys without TTL"
    verdicts: list[dict[str, Any]] = []
    hook = _hook(settings)
    prefixes = [prefix.encode() for prefix in options["prefixes"]]

    def authorize(count: int) -> tuple[int, str]:
        state = read_state(STATE_KEY)
        if state is None:
            return 0, f"run state {STATE_KEY} is unreadable: not acting (fix or delete the Variable)"
        entry = state.get(target)
        left = action_budget.remaining(entry, run_id, max_total)
        if left <= 0:
            return 0, f"at most {max_total} keys per run (this run's tries included): reached"
        now = datetime.now(UTC)
        verdict = gate.check_action(
            action, target, now=now, policy=policy, history=action_budget.gate_history(entry, run_id, now=now)
        )
        verdicts.append(verdict.as_dict())
        if not verdict.allowed:
            return 0, verdict.reason
        allowed = min(count, left)
        state[target] = action_budget.reserve(entry, run_id, allowed, now=now, keep=policy.breaker_window)
        # Reserved before acting: a crash after this point can only make a retry do less.
        write_state(STATE_KEY, state)
        reason = f"at most {max_total} keys per run (this run's tries included): reached" if allowed < count else ""
        return allowed, reason

    def settle(reserved: int, done: int) -> None:
        state = read_state(STATE_KEY) or {}
        state[target] = action_budget.settle(state.get(target), run_id, reserved=reserved, done=done)
        write_state(STATE_KEY, state)

    def act(keys: Any) -> list[bytes]:
        with action_result(f"{options['action']} {len(keys)} idle key(s)", target) as recorded:
            return recorded.check(
                hook.act_on_idle_keys(
                    keys,
                    mode=str(options["action"]),
                    min_idle_seconds=int(options["idle_seconds"]),
                    ttl_seconds=int(options["ttl_seconds"]),
                    prefixes=prefixes,
                ),
                "every key was in use again or gone when re-checked",
            )

    try:
        used_before = int(hook.info("memory").get("used_memory") or 0)
        results = [
            cleanup.clean_prefix(
                prefix,
                cleanup=options,
                scan=lambda cursor, count, match: hook.scan(cursor, count=count, match=match),
                facts=lambda keys: hook.key_facts(keys, with_size=False, with_idle=True),
                authorize=authorize,
                act=act,
                settle=settle,
                scan_count=int(settings["sampling"]["scan_count"]),
            )
            for prefix in options["prefixes"]
        ]
        used_after = int(hook.info("memory").get("used_memory") or 0)
    finally:
        hook.close()
    acted = sum(result["acted"] for result in results)
    refusal = next((verdict for verdict in verdicts if not verdict["allowed"]), None)
    log.info("Cleanup on %s: %d key(s) acted on", target, acted)
    return {
        "planned": True,
        "reason": reason,
        "acted": acted,
        "prefixes": results,
        "gate": refusal or (verdicts[-1] if verdicts else None),
        "used_bytes_before": used_before,
        "used_bytes_after": used_after,
        "run_total": action_budget.spent((read_state(STATE_KEY) or {}).get(target), run_id),
    }


def report_outcome(
    context: Mapping[str, Any], settings: Mapping[str, Any], diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]
) -> dict[str, Any]:
    title = f"{TITLE} (dry run: nothing was changed)" if settings["dry_run"] else TITLE
    return send_report(
        context,
        channel=settings["report_channel"],
        title=title,
        lines=report.report_lines(settings, diagnosis, outcome),
        status=report.report_status(diagnosis, outcome),
    )
