"""The task bodies of order_backlog_check: read settings, call the hooks and the action gate, post the messages.

The only module of the package that imports Airflow (lazily, inside the functions that need it): the judgement lives
in the pure modules next to it, and each task of ``dags/order_backlog_check.py`` is one call into this module.
"""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toilless.incidents import action_result
from toilless.sops.order_backlog_check import restart_policy
from toilless.sops.order_backlog_check.capacity import Capacity, assess_capacity
from toilless.sops.order_backlog_check.log_files import DEFAULT_MAX_DECOMPRESSED_BYTES, read_latest_run
from toilless.sops.order_backlog_check.log_parsing import RunSummary, latest_run_lines, summarize_run
from toilless.sops.order_backlog_check.verdict import Backlog, Thresholds, Verdict, classify, recovery_seen

if TYPE_CHECKING:
    from toilless.hooks.kubernetes import KubernetesDeploymentHook
    from toilless.hooks.orders_db import OrdersDbHook

log = logging.getLogger(__name__)

DAG_ID = "order_backlog_check"
#: Verdicts the developers hear about (their code or the processor itself is at fault).
DEVELOPER_VERDICTS = ("stuck", "errors", "crashed_silent")


# -- settings and measurements ---------------------------------------------------------------------------------
def resolve_settings(params: dict[str, Any] | None) -> dict[str, Any]:
    """This run's settings; bad config or Params raise InvalidInput: the task fails now, not retried."""
    from toilless.common.config import load_config
    from toilless.sops.order_backlog_check.settings import resolve_settings as resolve

    return resolve(load_config(DAG_ID), load_config("toilless"), dict(params or {}))


def _orders_db(settings: dict[str, Any]) -> OrdersDbHook:
    from toilless.common.config import include_path
    from toilless.hooks.orders_db import OrdersDbHook

    return OrdersDbHook(orders_conn_id=settings["orders_conn_id"], sql_path=include_path(settings["backlog_sql"]))


def _measure(settings: dict[str, Any], now: datetime) -> Backlog:
    oldest_age_minutes = float(settings["thresholds"]["oldest_order_age_minutes"])
    return _orders_db(settings).measure_backlog(now=now, oldest_age_minutes=oldest_age_minutes)


def measure_backlog(settings: dict[str, Any]) -> dict[str, Any]:
    """Outstanding orders, the oldest one's age and the overdue count, from the orders database."""
    now = datetime.now(UTC)
    backlog = _measure(settings, now)
    return {
        "outstanding": backlog.outstanding,
        "oldest_created_at": backlog.oldest_created_at.isoformat() if backlog.oldest_created_at else None,
        "oldest_age_minutes": backlog.oldest_age_minutes(now),
        "overdue": backlog.overdue,
        "measured_at": now.isoformat(),
    }


def _deployment(settings: dict[str, Any]) -> KubernetesDeploymentHook:
    from toilless.hooks.kubernetes import KubernetesDeploymentHook

    return KubernetesDeploymentHook.from_settings(settings["kubernetes"])


def read_processor_run(settings: dict[str, Any]) -> RunSummary:
    """The latest run of the processor from wherever its log lives, per the resolved settings of a run."""
    log_settings = settings["log"]
    excerpt_lines = int(log_settings.get("excerpt_lines", 15))
    timezone = str(log_settings.get("timezone", "UTC"))
    # Bounds a pod log's read and a rotated file's inflation alike: past it, reading is not worth the hint.
    max_decompressed_bytes = int(log_settings.get("max_decompressed_bytes") or DEFAULT_MAX_DECOMPRESSED_BYTES)
    if log_settings["source"] == "kubernetes":
        lines, source = _deployment(settings).read_pod_log(
            max_bytes=int(log_settings["max_bytes"]),
            max_read_bytes=max_decompressed_bytes,
        )
        run_lines, found = latest_run_lines([lines])
        sources = [source]
        notes: list[str] = []
    else:
        read = read_latest_run(
            Path(log_settings["path"]),
            allowed_roots=[str(root) for root in log_settings.get("allowed_roots") or []],
            max_files=int(log_settings["max_files"]),
            max_bytes=int(log_settings["max_bytes"]),
            max_decompressed_bytes=max_decompressed_bytes,
        )
        run_lines, found, sources, notes = read
        for note in notes:
            log.warning("Processor log: %s", note)
    summary = summarize_run(run_lines, found_startup=found, timezone=timezone, excerpt_lines=excerpt_lines)
    summary.sources = sources
    for note in notes:
        summary.add_note(note)
    return summary


def read_processor_log(settings: dict[str, Any]) -> dict[str, Any]:
    return read_processor_run(settings).as_dict()


def classify_backlog(settings: dict[str, Any], backlog: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The verdict and the capacity assessment behind it, from the measured backlog and the log summary."""
    summary = RunSummary.from_dict(run)
    capacity = Capacity.from_config(settings["processor"])
    thresholds = Thresholds.from_config(settings["thresholds"])
    measured = Backlog(
        outstanding=int(backlog["outstanding"]),
        oldest_created_at=datetime.fromisoformat(backlog["oldest_created_at"])
        if backlog["oldest_created_at"]
        else None,
        overdue=int(backlog["overdue"]),
    )
    assessment = assess_capacity(capacity, measured.outstanding, summary, thresholds.min_orders_for_throughput)
    verdict = classify(
        summary,
        measured,
        assessment,
        thresholds,
        capacity,
        datetime.fromisoformat(backlog["measured_at"]),
    )
    log.info("Verdict %s: %s", verdict.verdict, "; ".join(verdict.reasons))
    return {"verdict": verdict.as_dict(), "capacity": assessment.as_dict()}


# -- telling people --------------------------------------------------------------------------------------------
def notify_ops(settings: dict[str, Any], diagnosis: dict[str, Any], backlog: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    from toilless.common.reporting import post_message
    from toilless.sops.order_backlog_check.messages import ops_message

    if diagnosis["verdict"]["verdict"] != "overloaded":
        raise AirflowSkipException(f"nothing for Ops: the processor is {diagnosis['verdict']['verdict']}")
    message = ops_message(diagnosis, backlog, settings)
    return post_message(settings["channels"]["overloaded"], message["text"], blocks=message["blocks"])


def notify_developers(
    settings: dict[str, Any], diagnosis: dict[str, Any], backlog: dict[str, Any], run: dict[str, Any]
) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    from toilless.common.reporting import post_message
    from toilless.sops.order_backlog_check.messages import developers_message

    if diagnosis["verdict"]["verdict"] not in DEVELOPER_VERDICTS:
        raise AirflowSkipException(f"nothing for developers: the processor is {diagnosis['verdict']['verdict']}")
    message = developers_message(diagnosis, backlog, run, settings)
    return post_message(settings["channels"]["errors"], message["text"], blocks=message["blocks"])


def report_outcome(
    context: dict[str, Any],
    settings: dict[str, Any],
    diagnosis: dict[str, Any],
    backlog: dict[str, Any],
    restart: dict[str, Any],
    verification: dict[str, Any] | None,
    params: dict[str, Any] | None,
) -> dict[str, Any]:
    """The record to ``non_urgent``; on-call (``urgent``) when the restart did not bring the processor back."""
    from toilless.common.params import alert_from_params
    from toilless.common.reporting import post_message, send_report
    from toilless.sops.order_backlog_check.messages import outcome_report

    outcome = outcome_report(diagnosis, backlog, restart, verification, settings)
    sent: dict[str, Any] = {"outcome": outcome["status"], "escalated": False, "reported": False}
    if outcome["escalate"]:
        post_message(settings["channels"]["escalation"], outcome["escalation_text"])
        sent["escalated"] = True
    if outcome["worth_reporting"] or alert_from_params(params or {}):
        send_report(
            context,
            channel=settings["channels"]["report"],
            title=outcome["title"],
            lines=outcome["lines"],
            status=outcome["status"],
        )
        sent["reported"] = True
    return sent


# -- the restart -----------------------------------------------------------------------------------------------
def variable_marker(variable: str) -> dict[str, Any]:
    """The restart marker of the command method, kept in the run-state store (``toilless.common.state``)."""
    from toilless.common.state import decode_state, read_raw_state

    raw = read_raw_state(variable)
    value = decode_state(raw, key=variable)
    if value is None:
        # Unreadable: treat as "restarted for an unknown incident", which never matches a real incident key.
        return {"incident": "unreadable", "raw": raw}
    return value


def set_variable_marker(variable: str, marker: dict[str, Any]) -> None:
    from toilless.common.state import write_state

    write_state(variable, marker)


def run_restart_command(command: list[str], *, timeout: float) -> dict[str, Any]:
    """Run the configured restart command (an argv list, no shell); a non-zero exit is an error."""
    if not command or not all(isinstance(part, str) and part for part in command):
        raise ValueError("restart.command must be a non-empty list of strings (argv, no shell)")
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    output = (result.stdout + result.stderr).strip()[-2000:]
    if result.returncode != 0:
        raise RuntimeError(f"restart command {command[0]} exited {result.returncode}: {output}")
    return {"method": "command", "target": command[0], "output": output}


def restart_processor(settings: dict[str, Any], diagnosis: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    started = getattr(dag_run, "start_date", None)
    return restart_if_allowed(settings, diagnosis, run_started_at=started)


def restart_if_allowed(
    settings: dict[str, Any], diagnosis: dict[str, Any], *, run_started_at: datetime | None = None
) -> dict[str, Any]:
    """Restart the processor when the verdict, the action gate and the incident's history allow it.

    The marker is re-read right before acting, so a retry of this step (or the next hourly run) does not
    restart again for an incident it already restarted for. A marker for this incident written after
    ``run_started_at`` is this run's own restart (an earlier try whose answer was lost): reported as done, so
    the recovery is still verified. The action gate (``toilless.common.gate``: dry run, business hours,
    maintenance window, cool-down, circuit breaker) is checked with that fresh marker at the moment of restarting;
    its verdict is in the result under ``gate``.
    """
    from toilless.common import gate

    verdict_data = {key: value for key, value in diagnosis["verdict"].items() if key != "restartable"}
    verdict = Verdict(**verdict_data)
    restart = settings["restart"]
    method = restart["method"]
    gate_policy = restart_policy.restart_gate_policy(settings)
    now = datetime.now(UTC)
    result: dict[str, Any] = {
        "restarted": False,
        "dry_run": settings["dry_run"],
        "method": method,
        "incident": verdict.incident_key,
        "checked_at": now.isoformat(),
    }
    hook = _deployment(settings)
    # The restart marker is only read when there is something to restart: a healthy verdict touches nothing.
    marker: dict[str, Any] | None = None
    if verdict.restartable:
        marker = {}
        if method == "kubernetes":
            marker = hook.kubernetes_marker()
        elif method == "command":
            marker = variable_marker(restart["marker_variable"])
        now = datetime.now(UTC)  # the moment of acting: right after the fresh marker
    target = f"{settings['kubernetes']['namespace']}/{settings['kubernetes']['deployment']}"
    checked = gate.check_action(
        "restart the order processor",
        target if method == "kubernetes" else "order processor (restart command)",
        now=now,
        policy=gate_policy,
        history=restart_policy.restart_history(
            marker,
            incident_key=verdict.incident_key,
            now=now,
            memory_hours=float(restart["incident_memory_hours"]),
        ),
    )
    result["gate"] = checked.as_dict()
    result["policy"] = checked.as_dict()
    result["checked_at"] = now.isoformat()
    # Dry run is decided below (it reports what would be done); "already restarted for this incident" is reported by
    # decide_restart (with the earlier try of this run told apart); every other gate check decides here.
    gate_allows = checked.allowed or checked.check in (gate.DRY_RUN, gate.ONCE_PER_INCIDENT)
    decision = restart_policy.decide_restart(
        verdict,
        method=method,
        allow_restart=settings["allow_restart"],
        off_reason=settings.get("restart_off_reason"),
        marker=marker,
        policy_allowed=gate_allows,
        policy_reason=checked.reason,
        policy_allowed_from=checked.allowed_from,
        now=now,
        memory_hours=float(restart["incident_memory_hours"]),
    )
    if not verdict.restartable:
        return {**result, **decision.as_dict()}
    result.update(decision.as_dict())
    result["previous_marker"] = marker
    if (
        decision.already_done
        and run_started_at is not None
        and restart_policy.marker_time(marker or {}) >= run_started_at
    ):
        assert marker is not None  # already_done needs a marker
        log.info("This run already restarted the processor at %s (an earlier try)", marker.get("restarted_at"))
        result.update(
            restarted=True,
            already_done=False,
            restarted_at=marker["restarted_at"],
            reason=f"restarted by an earlier try of this run at {marker['restarted_at']}; not again",
        )
        return result
    if not decision.act:
        log.info("Not restarting: %s", decision.reason)
        return result
    if not checked.allowed:  # dry run
        result["reason"] = f"dry run: would restart ({decision.reason})"
        log.info("%s", result["reason"])
        return result
    assert verdict.incident_key is not None  # restartable verdicts carry one
    history = restart_policy.history_after_restart(marker, now, gate_policy.breaker_window)
    if method == "kubernetes":
        with action_result("rollout restart", target):
            done = hook.rollout_restart(incident_key=verdict.incident_key, now=now, history=history)
    else:
        variable = restart["marker_variable"]
        record = {"incident": verdict.incident_key, "restarted_at": now.isoformat(), "history": history}
        # Marker first: if this worker dies mid-command, a retry must not run the command again.
        set_variable_marker(variable, {**record, "state": "started"})
        try:
            with action_result("restart", "order processor (restart command)"):
                done = run_restart_command(list(restart["command"]), timeout=float(restart["command_timeout_seconds"]))
        except Exception:
            set_variable_marker(variable, {**record, "state": "failed"})
            raise
        set_variable_marker(variable, {**record, "state": "done"})
    result.update(done)
    result["restarted"] = True
    result["restarted_at"] = now.isoformat()
    return result


# -- verifying the recovery (one look of the deferred trigger) -------------------------------------------------
def check_recovery(settings: dict[str, Any], restarted_at: str, baseline_outstanding: int) -> dict[str, Any]:
    """One look: the processor's latest run from its log, and the backlog from the orders database."""
    summary = read_processor_run(settings)
    backlog = _measure(settings, datetime.now(UTC))
    recovered, detail = recovery_seen(
        summary,
        backlog.outstanding,
        restarted_at=datetime.fromisoformat(restarted_at),
        baseline_outstanding=baseline_outstanding,
    )
    return {
        "recovered": recovered,
        "detail": detail,
        "outstanding": backlog.outstanding,
        "orders_processed": summary.orders_processed,
        "started_at": summary.started_at.isoformat() if summary.started_at else None,
        "excerpt": summary.excerpt,
    }
