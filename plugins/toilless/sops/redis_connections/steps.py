"""Redis connections: the task bodies of dags/redis_connections.py, the only module of the SOP that touches Airflow
(through ``toilless.common``) and Redis (``toilless.hooks.redis``).
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
from toilless.sops.redis_connections import clients, health, report
from toilless.sops.redis_connections import settings as settings_module

if TYPE_CHECKING:
    from toilless.hooks.redis import RedisHook

log = logging.getLogger(__name__)

DAG_ID = "redis_connections"
TITLE = "Redis connections"
#: Run state (toilless.common.state): per Redis, the runs that ended connections and each run's budget.
STATE_KEY = f"toilless_{DAG_ID}_actions"


def _hook(settings: Mapping[str, Any]) -> RedisHook:
    from toilless.hooks.redis import RedisHook

    return RedisHook.from_settings(settings, dag_id=DAG_ID)


def target_of(settings: Mapping[str, Any]) -> str:
    return f"redis:{settings['redis_conn_id']}"


def resolve_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration (YAML + Variable) with the run's Params applied; the Connection must be a Redis one."""
    resolved = settings_module.resolve(load_config(DAG_ID), params)
    _hook(resolved).check_connection()
    return resolved


def diagnose_connections(settings: Mapping[str, Any]) -> dict[str, Any]:
    """INFO clients and stats (twice, for the rejection rate) and CLIENT LIST, grouped (bounded)."""
    hook = _hook(settings)
    try:
        stats_first = hook.info("stats")
        started = time.monotonic()
        time.sleep(float(settings["sample_seconds"]))
        stats_second = hook.info("stats")
        seconds = time.monotonic() - started
        info_clients = hook.info("clients")
        own_id = hook.own_client_id()
        listed, total = clients.parse_client_list(hook.client_list(), limit=int(settings["client_list_max"]))
    finally:
        hook.close()
    # This run's own connection is not one of the clients judged.
    others = [client for client in listed if client.id != own_id]
    measured = health.figures(info_clients, stats_first, stats_second, seconds=seconds)
    kill = settings["kill"]
    per_name = clients.idle_per_name(others, int(kill["idle_seconds"]))
    assessment = health.assess(
        measured,
        per_name,
        pools=settings.get("pools") or {},
        thresholds=settings["thresholds"],
        idle_seconds=int(kill["idle_seconds"]),
    )
    candidates = clients.choose_idle(
        others, names=kill["client_names"], idle_seconds=int(kill["idle_seconds"]), own_id=own_id
    )
    log.info("Redis %s: %s (%s)", settings["redis_conn_id"], assessment["level"], "; ".join(assessment["findings"]))
    return {
        "figures": measured,
        "assessment": assessment,
        "groups": clients.group(others, top=int(settings["top_groups"])),
        "per_name": dict(sorted(per_name.items(), key=lambda item: -item[1]["connections"])[:50]),
        "listed": len(listed),
        "listed_total": total,
        "idle_candidates": len(candidates),
    }


def _plan(settings: Mapping[str, Any], diagnosis: Mapping[str, Any]) -> tuple[bool, str]:
    kill = settings["kill"]
    if not kill["allow"]:
        return False, "ending idle connections is switched off (kill.allow, or the run's Param allow_kill)"
    if not kill["client_names"]:
        return False, "no client names configured (kill.client_names): advice only"
    if kill["when"] == "pressure" and diagnosis["assessment"]["level"] == health.OK:
        return False, "no connection pressure: idle connections are ended only under pressure (kill.when)"
    return True, f"end connections of {', '.join(kill['client_names'])} idle at least {kill['idle_seconds']} s"


def kill_idle_clients(
    settings: Mapping[str, Any], diagnosis: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """End idle connections of the configured client names, within the budget and the gate; each one re-read first."""
    planned, reason = _plan(settings, diagnosis)
    if not planned:
        log.info("Not ending connections: %s", reason)
        return {"planned": False, "reason": reason, "ended_count": 0}
    kill = settings["kill"]
    run_id = str(context.get("run_id") or "manual")
    target = target_of(settings)
    max_total = int(kill["max_clients_per_run"])
    names = list(kill["client_names"])
    idle_seconds = int(kill["idle_seconds"])
    policy = gate.sop_gate_policy(load_config("toilless"), settings)
    verdicts: list[dict[str, Any]] = []
    budget_reason = f"at most {max_total} connections per run (this run's tries included): reached"

    def authorize(count: int) -> tuple[int, str]:
        state = read_state(STATE_KEY)
        if state is None:
            return 0, f"run state {STATE_KEY} is unreadable: not acting (fix or delete the Variable)"
        entry = state.get(target)
        left = action_budget.remaining(entry, run_id, max_total)
        if left <= 0:
            return 0, budget_reason
        now = datetime.now(UTC)
        verdict = gate.check_action(
            "end idle connections",
            target,
            now=now,
            policy=policy,
            history=action_budget.gate_history(entry, run_id, now=now),
        )
        verdicts.append(verdict.as_dict())
        if not verdict.allowed:
            return 0, verdict.reason
        allowed = min(count, left)
        state[target] = action_budget.reserve(entry, run_id, allowed, now=now, keep=policy.breaker_window)
        write_state(STATE_KEY, state)  # reserved before acting: a crash can only make a retry do less
        return allowed, budget_reason if allowed < count else ""

    def settle(reserved: int, done: int) -> None:
        state = read_state(STATE_KEY) or {}
        state[target] = action_budget.settle(state.get(target), run_id, reserved=reserved, done=done)
        write_state(STATE_KEY, state)

    hook = _hook(settings)
    try:
        own_id = hook.own_client_id()

        def eligible(client: clients.Client) -> str | None:
            return clients.why_not(client, names=names, idle_seconds=idle_seconds, own_id=own_id)

        def recheck(client_id: int) -> clients.Client | None:
            fresh, _ = clients.parse_client_list(hook.client_list([client_id]), limit=1)
            return fresh[0] if fresh else None

        def kill(client_id: int) -> int:
            with action_result("kill idle client", f"{target} client {client_id}") as recorded:
                return recorded.check(hook.kill_client(client_id), "the client was gone")

        listed, _ = clients.parse_client_list(hook.client_list(), limit=int(settings["client_list_max"]))
        chosen = clients.choose_idle(listed, names=names, idle_seconds=idle_seconds, own_id=own_id)
        result = clients.end_idle(
            chosen, authorize=authorize, recheck=recheck, kill=kill, settle=settle, eligible=eligible
        )
        connected_after = int(hook.info("clients").get("connected_clients") or 0)
    finally:
        hook.close()
    refusal = next((verdict for verdict in verdicts if not verdict["allowed"]), None)
    log.info("Ended %d idle connection(s) on %s", result["ended_count"], target)
    return {
        "planned": True,
        "reason": reason,
        **result,
        "gate": refusal or (verdicts[-1] if verdicts else None),
        "connected_after": connected_after,
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
        status=report.report_status(diagnosis),
    )
