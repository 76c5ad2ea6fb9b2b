"""The task bodies of dags/postgres_connections.py, the only module of the SOP that touches Airflow (through
``toilless.common``: config and run state are Variables, the report goes to Slack) and the server (through
``toilless.hooks.postgres_admin``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from toilless.common import gate
from toilless.common.config import include_path, load_config
from toilless.common.reporting import send_report
from toilless.common.state import read_state, write_state
from toilless.incidents import action_result
from toilless.sops.postgres_connections import advice, messages
from toilless.sops.postgres_connections import settings as policy
from toilless.sops.postgres_connections.blocking import blocking_chains
from toilless.sops.postgres_connections.sessions import (
    Session,
    ending_refusal,
    plan_terminations,
    reason_to_end,
    refusal_kind,
)

if TYPE_CHECKING:
    from toilless.hooks.postgres_admin import PostgresAdminHook

log = logging.getLogger(__name__)

DAG_ID = policy.DAG_ID
ACTION = "end session"
#: Run state (toilless.common.state): the sessions each run ended (markers: the per-run cap holds across retries)
#: and when, per server (the circuit breaker across runs).
STATE_KEY = f"toilless_{DAG_ID}_ended"
#: How long markers are kept.
KEEP_MARKERS = timedelta(days=7)
#: Marker statuses that count against the cap: "ending" is written before pg_terminate_backend, so a crash right
#: after it still counts.
COUNTED = ("ending", "ended")


def resolve_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration (YAML + Variable) with the run's Params applied, and the Connection checked to be
    PostgreSQL: bad or loosening input fails the run here, before anything is read or changed."""
    settings = policy.resolve(load_config(DAG_ID), params)
    _hook(settings).connection_info  # noqa: B018 - raises NotPostgresConnection (InvalidInput)
    return settings


def _hook(settings: Mapping[str, Any]) -> PostgresAdminHook:
    from toilless.hooks.postgres_admin import PostgresAdminHook

    return PostgresAdminHook(postgres_conn_id=settings["postgres_conn_id"], application_name=f"toilless_{DAG_ID}")


def _query(name: str) -> str:
    from toilless.hooks.postgres_admin import load_query

    return load_query(include_path("sql", DAG_ID, f"{name}.sql"))


def diagnose(hook: PostgresAdminHook, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every diagnosis query against the server, and the pure judgement over the answers (timed, for the bench)."""
    timings: dict[str, float] = {}

    def timed(name: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        started = time.perf_counter()
        rows = hook.records(_query(name), parameters)
        timings[name] = round(time.perf_counter() - started, 4)
        return rows

    server = timed("server")[0]
    groups = timed("breakdown", {"max_groups": 5000})
    long_rows = timed(
        "long_sessions",
        {
            "query_chars": 4 * settings["query_chars"],
            "long_query_seconds": settings["long_query_seconds"],
            "idle_in_transaction_seconds": settings["idle_in_transaction_seconds"],
            "include_idle": bool(settings["end_idle"]),
            "idle_seconds": settings["idle_seconds"],
            "max_rows": settings["max_rows"],
        },
    )
    chain_rows = timed("blocking", {"query_chars": 4 * settings["query_chars"], "max_rows": settings["max_rows"]})
    sessions = [Session.from_row(row, query_chars=settings["query_chars"]) for row in long_rows]
    for row in chain_rows:
        row["query"] = Session.from_row({**row, "backend_start": ""}, query_chars=settings["query_chars"]).query
    own_pid = int(server["own_pid"])
    used = advice.usage(server, int(server["client_sessions"]), settings)
    counts = advice.breakdowns(groups)
    plan = plan_terminations(sessions, settings, own_pid=own_pid)
    listed = int(settings["max_listed"])
    long_queries = [session for session in sessions if session.state == "active"]
    idle_in_transaction = [session for session in sessions if session.state.startswith("idle in")]
    refused_counts: dict[str, int] = {}
    for _, reason in plan.refused:
        kind = refusal_kind(reason)
        refused_counts[kind] = refused_counts.get(kind, 0) + 1
    return {
        "measured_at": _iso(server["measured_at"]),
        "server_version_num": server["server_version_num"],
        "usage": used,
        "breakdown": counts,
        "long_queries": [session.as_dict() for session in long_queries[:listed]],
        "long_queries_total": len(long_queries),
        "idle_in_transaction": [session.as_dict() for session in idle_in_transaction[:listed]],
        "idle_in_transaction_total": len(idle_in_transaction),
        "chains": blocking_chains(chain_rows, limit=listed),
        "to_end": [{**session.as_dict(), "reason": reason_to_end(session)} for session in plan.to_end],
        "over_cap": len(plan.over_cap),
        "refused": [
            {"pid": session.pid, "application_name": session.application_name, "reason": reason}
            for session, reason in plan.refused[:listed]
        ],
        "refused_counts": refused_counts,
        "pools": advice.pool_advice(counts["per_application"], settings["pools"], free_slots=used["free_slots"]),
        "pools_vs_capacity": advice.pools_vs_capacity(settings["pools"], used["available_to_ordinary_roles"]),
        "timings": timings,
    }


def inspect_connections(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Usage, breakdowns, long and idle sessions, blocking chains and the sessions that may be ended."""
    hook = _hook(settings)
    try:
        return diagnose(hook, settings)
    finally:
        hook.close()


def end_idle_sessions(
    settings: Mapping[str, Any], diagnosis: Mapping[str, Any], *, run_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """End the planned sessions, each re-read right before and only if still eligible, the gate allows it and the
    run's markers leave room under the cap (counted across retries of this run)."""
    results: list[dict[str, Any]] = []
    if not diagnosis["to_end"]:
        return {"ended": 0, "results": results}
    conn_id = settings["postgres_conn_id"]
    cap = int(settings["max_terminations_per_run"])
    hook = _hook(settings)
    try:
        own_pid = hook.own_pid()
        for planned in diagnosis["to_end"]:
            moment = now or datetime.now(UTC)
            state = _markers(moment)
            run = state["runs"].setdefault(run_id, {"conn_id": conn_id, "sessions": []})
            counted = [marker for marker in run["sessions"] if marker["status"] in COUNTED]
            outcome = {
                "pid": planned["pid"],
                "application_name": planned["application_name"],
                "usename": planned["usename"],
            }
            if any(
                marker["pid"] == planned["pid"] and marker["backend_start"] == planned["backend_start"]
                for marker in counted
            ):
                results.append(
                    {
                        **outcome,
                        "ended": False,
                        "status": "done_before",
                        "reason": "ended by an earlier try of this run",
                    }
                )
                continue
            if len(counted) >= cap:
                results.append(
                    {
                        **outcome,
                        "ended": False,
                        "status": "cap",
                        "reason": f"the cap of {cap} session(s) per run is reached (this run, retries included)",
                    }
                )
                continue
            rows = hook.records(_query("session"), {"pid": planned["pid"], "query_chars": 4 * settings["query_chars"]})
            if not rows or Session.from_row(rows[0]).backend_start != planned["backend_start"]:
                results.append(
                    {
                        **outcome,
                        "ended": False,
                        "status": "gone",
                        "reason": "the session is gone (its pid is not the same session any more)",
                    }
                )
                continue
            session = Session.from_row(rows[0], query_chars=settings["query_chars"])
            refusal = ending_refusal(session, settings, own_pid=own_pid)
            if refusal is not None:
                results.append(
                    {**outcome, "ended": False, "status": "not_eligible", "reason": f"no longer eligible: {refusal}"}
                )
                continue
            verdict = gate.check_action(
                ACTION,
                f"{conn_id} pid {session.pid}",
                now=moment,
                policy=_gate_policy(settings),
                history=gate.TargetHistory(recent_actions=_recent(state, conn_id, moment)),
            )
            if not verdict.allowed:
                status = "dry_run" if verdict.check == gate.DRY_RUN else "gate"
                results.append(
                    {**outcome, "ended": False, "status": status, "reason": verdict.reason, "gate": verdict.as_dict()}
                )
                continue
            marker = {
                "pid": session.pid,
                "backend_start": session.backend_start,
                "at": moment.isoformat(),
                "status": "ending",
            }
            run["sessions"].append(marker)
            write_state(STATE_KEY, state)
            with action_result("terminate idle session", f"{conn_id} pid {session.pid}") as act:
                ended = act.check(
                    hook.terminate_backend(
                        pid=session.pid,
                        backend_start=rows[0]["backend_start"],
                        state=rows[0]["state"],
                        state_change=rows[0]["state_change"],
                    ),
                    "the session changed right before: left alone",
                )
            marker["status"] = "ended" if ended else "not_ended"
            write_state(STATE_KEY, state)
            log.info(
                "pid %s (%s): %s", session.pid, session.application_name, "ended" if ended else "changed, not ended"
            )
            results.append(
                {
                    **outcome,
                    "ended": ended,
                    "status": "ended" if ended else "changed",
                    "reason": reason_to_end(session) if ended else "it changed state right before ending: left alone",
                    "gate": verdict.as_dict(),
                }
            )
    finally:
        hook.close()
    return {"ended": sum(1 for result in results if result["ended"]), "results": results}


def _gate_policy(settings: Mapping[str, Any]) -> gate.GatePolicy:
    return gate.sop_gate_policy(load_config("toilless"), settings)


def _markers(now: datetime) -> dict[str, Any]:
    """The markers, pruned to :data:`KEEP_MARKERS`; an unreadable value starts afresh (logged by the state module)."""
    state = read_state(STATE_KEY) or {}
    runs = state.get("runs") if isinstance(state.get("runs"), dict) else {}
    cutoff = now - KEEP_MARKERS
    kept = {}
    for run_id, run in runs.items():
        sessions = [marker for marker in run.get("sessions", []) if _parse(marker.get("at")) > cutoff]
        if sessions:
            kept[run_id] = {**run, "sessions": sessions}
    return {"runs": kept}


def _recent(state: Mapping[str, Any], conn_id: str, now: datetime) -> tuple[datetime, ...]:
    """Sessions Toilless ended on this server (any run): the circuit breaker's history."""
    return tuple(
        _parse(marker["at"])
        for run in state["runs"].values()
        if run.get("conn_id") == conn_id
        for marker in run["sessions"]
        if marker["status"] in COUNTED and _parse(marker["at"]) <= now
    )


def report_connections(
    context: Mapping[str, Any], settings: Mapping[str, Any], diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]
) -> dict[str, Any]:
    report = messages.report(settings, diagnosis, outcome)
    dag_run = context.get("dag_run")
    quiet = report["status"] == "ok" and not outcome.get("results")
    if quiet and str(getattr(dag_run, "run_type", "")) in ("scheduled", "DagRunType.SCHEDULED"):
        log.info("Nothing over a threshold and nothing ended: a scheduled run stays quiet")
        return {"posted": False, "status": report["status"]}
    return send_report(
        context,
        channel=settings["report_channel"],
        title=report["title"],
        lines=report["lines"],
        status=report["status"],
    )


def _parse(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (None if value is None else str(value))
