"""The task bodies of dags/postgres_replica_lag.py, the only module of the SOP that touches Airflow (config and run
state are Variables, the report goes to Slack) and the servers (``toilless.hooks.postgres_admin``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from toilless.common import gate
from toilless.common.config import include_path, load_config
from toilless.common.redaction import mask_secrets
from toilless.common.reporting import send_report
from toilless.common.state import read_state, write_state
from toilless.incidents import action_result
from toilless.sops.postgres_replica_lag import diagnosis as judge
from toilless.sops.postgres_replica_lag import disk, messages
from toilless.sops.postgres_replica_lag import settings as policy

if TYPE_CHECKING:
    from toilless.hooks.postgres_admin import PostgresAdminHook

log = logging.getLogger(__name__)

DAG_ID = policy.DAG_ID
STATE_KEY = f"toilless_{DAG_ID}_actions"
KEEP_MARKERS = timedelta(days=7)
COUNTED = ("acting", "done")


def _hook(conn_id: str) -> PostgresAdminHook:
    from toilless.hooks.postgres_admin import PostgresAdminHook

    return PostgresAdminHook(postgres_conn_id=conn_id, application_name=f"toilless_{DAG_ID}")


def _query(name: str) -> str:
    from toilless.hooks.postgres_admin import load_query

    return load_query(include_path("sql", DAG_ID, f"{name}.sql"))


def resolve_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """Configuration + Variable + Params, validated, every Connection checked to be PostgreSQL: bad input fails here."""
    settings = policy.resolve(load_config(DAG_ID), params)
    for conn_id in [settings["primary_conn_id"], *(replica["conn_id"] for replica in settings["replicas"])]:
        _hook(conn_id).connection_info  # noqa: B018 - raises NotPostgresConnection (InvalidInput)
    return settings


def read_primary(settings: Mapping[str, Any]) -> dict[str, Any]:
    hook = _hook(settings["primary_conn_id"])
    try:
        role = hook.records(_query("role"))[0]
        if role["in_recovery"]:
            return {"error": "the primary Connection points at a server in recovery (a replica)", "rows": []}
        rows = [_jsonable(row) for row in hook.records(_query("replication"))]
        flushed = hook.records("SELECT pg_current_wal_flush_lsn()::text AS lsn")[0]["lsn"]
        return {"rows": rows, "flush_lsn": flushed}
    except Exception as err:
        from toilless.hooks.postgres_admin import NotPostgresConnection

        if isinstance(err, NotPostgresConnection):
            raise
        log.warning("Cannot read the primary: %s", mask_secrets(str(err)))
        return {"error": mask_secrets(f"{type(err).__name__}: {err}")[:500], "rows": []}
    finally:
        hook.close()


def read_replica(replica: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    hook = _hook(replica["conn_id"])
    try:
        role = hook.records(_query("role"))[0]
        observed: dict[str, Any] = {"in_recovery": bool(role["in_recovery"])}
        if observed["in_recovery"]:
            observed["status"] = _jsonable(hook.records(_query("replica"))[0])
            receivers = hook.records(_query("wal_receiver"))
            observed["receiver"] = _jsonable(receivers[0]) if receivers else None
            observed.update(read_blockers(hook, settings))
    except Exception as err:
        log.warning("Cannot read replica %s: %s", replica["name"], mask_secrets(str(err)))
        observed = {"error": mask_secrets(f"{type(err).__name__}: {err}")[:500]}
    finally:
        hook.close()
    observed["disk"] = disk.measure(replica["disk"])
    return observed


def read_blockers(hook: PostgresAdminHook, settings: Mapping[str, Any]) -> dict[str, Any]:
    from toilless.sops.postgres_connections.sessions import shorten_query

    rows = hook.records(_query("replay_blockers"), {"query_chars": 4 * settings["query_chars"], "max_rows": 50})
    wait = {"type": rows[0]["startup_wait_event_type"], "event": rows[0]["startup_wait_event"]} if rows else {}
    blockers = []
    for row in rows:
        if row.get("pid") is None:
            continue
        row = _jsonable(row)
        row["query"] = shorten_query(row.get("query"), settings["query_chars"])
        blockers.append(row)
    return {"startup_wait": wait, "blockers": blockers}


def inspect_replication(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Read the primary and every replica, then judge each (pure, ``diagnosis``)."""
    primary = read_primary(settings)
    results = []
    for replica in settings["replicas"]:
        observed = read_replica(replica, settings)
        row = judge.match_replication_row(replica, primary["rows"])
        results.append(
            judge.diagnose_replica(replica, observed, row, settings, primary_flush_lsn=primary.get("flush_lsn"))
        )
    return {"primary": primary, "replicas": results, "level": judge.overall_level(results)}


def act_on_replay(
    settings: Mapping[str, Any], diagnosis: Mapping[str, Any], *, run_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """Resume paused replays and cancel the queries holding replay, each re-checked on the replica right before,
    through the action gate, within ``max_cancels_per_run`` (retries of the run included)."""
    results: list[dict[str, Any]] = []
    for replica in diagnosis["replicas"]:
        for action in replica["actions"]:
            hook = _hook(action["conn_id"])
            try:
                results.append(_act(hook, settings, action, run_id=run_id, now=now or datetime.now(UTC)))
            finally:
                hook.close()
    return {"acted": sum(1 for result in results if result["done"]), "results": results}


def _act(
    hook: PostgresAdminHook, settings: Mapping[str, Any], action: Mapping[str, Any], *, run_id: str, now: datetime
) -> dict[str, Any]:
    kind = action["kind"]
    target = f"{action['replica']} pid {action['pid']}" if kind == "cancel" else str(action["replica"])
    outcome = {"kind": kind, "replica": action["replica"], "pid": action.get("pid"), "done": False}
    state = _markers(now)
    run = state["runs"].setdefault(run_id, {"actions": []})
    done_here = [marker for marker in run["actions"] if marker["status"] in COUNTED]
    if kind == "cancel":
        cancels = [marker for marker in done_here if marker["kind"] == "cancel"]
        if any(
            marker["pid"] == action["pid"] and marker["backend_start"] == action["backend_start"] for marker in cancels
        ):
            return {**outcome, "status": "done_before", "reason": "cancelled by an earlier try of this run"}
        if len(cancels) >= settings["max_cancels_per_run"]:
            return {
                **outcome,
                "status": "cap",
                "reason": f"the cap of {settings['max_cancels_per_run']} cancel(s) per run is reached",
            }
        current = read_blockers(hook, settings)["blockers"]
        still = next(
            (
                row
                for row in current
                if row["pid"] == action["pid"]
                and row["backend_start"] == action["backend_start"]
                and row["query_start"] == action["query_start"]
            ),
            None,
        )
        if still is None:
            return {
                **outcome,
                "status": "gone",
                "reason": "the query no longer holds replay (finished, or another session)",
            }
    else:
        if (
            not hook.records("SELECT pg_is_in_recovery() AS recovery")[0]["recovery"]
            or not hook.records("SELECT pg_is_wal_replay_paused() AS paused")[0]["paused"]
        ):
            return {**outcome, "status": "gone", "reason": "replay is no longer paused"}
    verdict = gate.check_action(
        "cancel the query holding replay" if kind == "cancel" else "resume WAL replay",
        target,
        now=now,
        policy=_gate_policy(settings),
        history=gate.TargetHistory(recent_actions=_recent(state, action["replica"], now)),
    )
    if not verdict.allowed:
        status = "dry_run" if verdict.check == gate.DRY_RUN else "gate"
        return {**outcome, "status": status, "reason": verdict.reason, "gate": verdict.as_dict()}
    marker = {
        "kind": kind,
        "replica": action["replica"],
        "pid": action.get("pid"),
        "backend_start": action.get("backend_start"),
        "at": now.isoformat(),
        "status": "acting",
    }
    run["actions"].append(marker)
    write_state(STATE_KEY, state)
    if kind == "cancel":
        with action_result("cancel the query holding replay", target) as act:
            done = act.check(
                hook.cancel_backend(
                    pid=int(action["pid"]),
                    backend_start=datetime.fromisoformat(action["backend_start"]),
                    query_start=datetime.fromisoformat(action["query_start"]),
                ),
                "the query changed right before cancelling: left alone",
            )
        reason = (
            f"cancelled the query of pid {action['pid']} ({action.get('application_name') or '(none)'}, "
            f"{action.get('usename')}) that held replay for {float(action.get('query_seconds') or 0):.0f} s"
            if done
            else "the query changed right before cancelling: left alone"
        )
    else:
        with action_result("resume WAL replay", target) as act:
            done = act.check(hook.resume_wal_replay(), "replay was no longer paused")
        reason = "resumed WAL replay" if done else "replay was no longer paused"
    marker["status"] = "done" if done else "not_done"
    write_state(STATE_KEY, state)
    log.info("%s on %s: %s", kind, action["replica"], reason)
    return {
        **outcome,
        "done": done,
        "status": "done" if done else "changed",
        "reason": reason,
        "gate": verdict.as_dict(),
    }


def _gate_policy(settings: Mapping[str, Any]) -> gate.GatePolicy:
    return gate.sop_gate_policy(load_config("toilless"), settings)


def _markers(now: datetime) -> dict[str, Any]:
    state = read_state(STATE_KEY) or {}
    runs = state.get("runs") if isinstance(state.get("runs"), dict) else {}
    cutoff = now - KEEP_MARKERS
    kept = {}
    for run_id, run in runs.items():
        actions = [marker for marker in run.get("actions", []) if _parse(marker.get("at")) > cutoff]
        if actions:
            kept[run_id] = {"actions": actions}
    return {"runs": kept}


def _recent(state: Mapping[str, Any], replica: str, now: datetime) -> tuple[datetime, ...]:
    return tuple(
        _parse(marker["at"])
        for run in state["runs"].values()
        for marker in run["actions"]
        if marker["replica"] == replica and marker["status"] in COUNTED and _parse(marker["at"]) <= now
    )


def report_replica_lag(
    context: Mapping[str, Any], settings: Mapping[str, Any], diagnosis: Mapping[str, Any], outcome: Mapping[str, Any]
) -> dict[str, Any]:
    report = messages.report(settings, diagnosis, outcome)
    dag_run = context.get("dag_run")
    quiet = report["status"] == "ok" and not outcome.get("results")
    if quiet and str(getattr(dag_run, "run_type", "")) in ("scheduled", "DagRunType.SCHEDULED"):
        log.info("Every replica within its thresholds: a scheduled run stays quiet")
        return {"posted": False, "status": report["status"]}
    return send_report(
        context,
        channel=settings["report_channel"],
        title=report["title"],
        lines=report["lines"],
        status=report["status"],
    )


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


def _parse(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
