"""log_rotation's task bodies: the only module of the package that imports Airflow.

Each function is one step of the SOP (dags/log_rotation.py wires them); the judgement lives in the pure modules
(planning, rotate, compress, retention, usage, report) and the engine that runs them on the host owning the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import get_current_context

from toilless.common.params import alert_from_params


def _work_label(work: dict[str, Any]) -> None:
    get_current_context()["log_set_name"] = work["log_set"]["name"]  # type: ignore[typeddict-unknown-key]


def _state_dir(work: dict[str, Any]) -> Any:
    from toilless.sops.log_rotation.settings import state_dir

    return state_dir({"state_dir": work["state_dir"]})


@contextmanager
def _recorded(action: str, work: dict[str, Any]) -> Iterator[Any]:
    """The step's file changes on the run's incident timeline (toilless.incidents.action_result): what was done,
    or failed. A dry run changes nothing, so it records nothing; a run without an alert has no incident."""
    if work["dry_run"]:
        yield None
        return
    from toilless.incidents import action_result

    with action_result(action, f"log set {work['log_set']['name']}") as act:
        yield act


def _outcome(act: Any, result: dict[str, Any], done: str) -> None:
    if act is None:
        return
    errors = [str(error) for error in result.get("errors") or []]
    if result.get("held") or "gate" not in result:
        # Held by the gate (its verdict is on the timeline) or nothing to change (no verdict asked): no action.
        act.attempted = False
        return
    act.detail = done
    if errors:
        act.result, act.detail = "not done", f"{done}; {len(errors)} error(s): {errors[0][:200]}"


def _gate_request(work: dict[str, Any]) -> Any:
    """What the action gate needs, read at the moment of acting: the policy as configured now (the maintenance
    window, cool-down and circuit breaker of include/config/log_rotation.yaml and its Variable; Params can only ask
    for a dry run), this run, and the alert's incident."""
    from toilless.common.config import load_config
    from toilless.common.gate import sop_gate_policy
    from toilless.incidents.events import incident_of_alert
    from toilless.sops.log_rotation.gating import GateRequest

    context = get_current_context()
    policy = sop_gate_policy(load_config("toilless"), load_config("log_rotation"), dry_run=bool(work["dry_run"]))
    return GateRequest(
        policy=policy, run_id=str(context["run_id"]), incident=incident_of_alert(alert_from_params(context["params"]))
    )


def plan_rotation(host_queues: list[str]) -> dict[str, Any]:
    """Pick the log sets and validate every path before anything is touched."""
    from toilless.common.config import load_config
    from toilless.common.gate import sop_gate_policy
    from toilless.sops.log_rotation.planning import build_plan

    context = get_current_context()
    params = context["params"]
    config = load_config("log_rotation")
    # The maintenance window, cool-down and circuit breaker are the action gate's, checked by each log set's task
    # under its lock at the moment it acts (a plan made minutes earlier, before a retry, is not enough).
    dry_run = bool(params.get("dry_run"))
    note = ""
    now = datetime.now(UTC)
    # Checked here too, so that a malformed window or breaker fails the run (not retried) before anything is touched.
    sop_gate_policy(load_config("toilless"), config, dry_run=dry_run)
    try:
        return build_plan(
            config,
            names=list(params.get("log_sets") or []),
            extra_paths=list(params.get("paths") or []),
            alert=alert_from_params(params),
            dry_run=dry_run,
            host_queues=host_queues,
            # Empty: each host's own $AIRFLOW_HOME/toilless/log_rotation, resolved on that host.
            state_dir=str(config.get("state_dir") or ""),
            now_iso=now.isoformat(),
            note=note,
        )
    except ValueError as err:  # bad config or Params: retrying cannot help
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"nothing was touched: {err}") from err


def select_host_work(plan: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The work items of one host queue (an empty list skips that host's tasks)."""
    return list(plan[key])


def rotate_logs(work: dict[str, Any]) -> dict[str, Any]:
    """Rotate and compress one log set's files (on the host owning them)."""
    from toilless.sops.log_rotation import engine
    from toilless.sops.log_rotation.settings import log_set_from_dict

    _work_label(work)
    with _recorded("rotate and compress logs", work) as act:
        rotation = engine.rotate_log_set(
            log_set_from_dict(work["log_set"]),
            state_dir=_state_dir(work),
            dry_run=work["dry_run"],
            extra_globs=tuple(work["extra_globs"]),
            gate=_gate_request(work),
        )
        _outcome(act, rotation, f"{len(rotation['rotated'])} rotated, {len(rotation['compressed'])} compressed")
    return {"work": work, "rotation": rotation}


def apply_retention(rotated: dict[str, Any]) -> dict[str, Any]:
    """Delete this DAG's archives beyond retention (a dry run lists them)."""
    from toilless.sops.log_rotation import engine
    from toilless.sops.log_rotation.settings import log_set_from_dict

    work = rotated["work"]
    _work_label(work)
    with _recorded("delete archives beyond retention", work) as act:
        kept = engine.apply_retention(
            log_set_from_dict(work["log_set"]),
            state_dir=_state_dir(work),
            dry_run=work["dry_run"],
            extra_globs=tuple(work["extra_globs"]),
            planned_archives=rotated["rotation"]["compressed"] if work["dry_run"] else None,
            gate=_gate_request(work),
        )
        _outcome(act, kept, f"{len(kept['deleted'])} deleted")
    return {**rotated, "retention": kept}


def measure_mount_usage(retained: dict[str, Any]) -> dict[str, Any]:
    """Measure the log set's mount after rotation: usage, growth, largest files."""
    from toilless.sops.log_rotation import engine
    from toilless.sops.log_rotation.settings import log_set_from_dict

    work = retained["work"]
    _work_label(work)
    measured = engine.measure_mount_usage(
        log_set_from_dict(work["log_set"]), state_dir=_state_dir(work), dry_run=work["dry_run"]
    )
    return {**retained, "usage": measured}


def _flatten(measured: list[Any]) -> list[dict[str, Any]]:
    """Results of every host's mapped tasks; a failed log set has none."""
    return [item for per_queue in measured if per_queue for item in per_queue if item]


def warn_low_storage(plan: dict[str, Any] | None, measured: list[Any]) -> dict[str, Any]:
    """Tell the channel (and urgent at critical) about mounts still at or above the warning threshold."""
    if not plan:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("plan_rotation failed: nothing was measured")
    from toilless.common.reporting import send_report
    from toilless.sops.log_rotation.report import low_storage_messages

    context = get_current_context()
    messages = low_storage_messages([item["usage"] for item in _flatten(measured)])
    for channel, message in messages.items():
        send_report(
            context,
            channel=channel,
            title="Low storage on log mounts",
            lines=message["lines"],
            status=message["status"],
        )
    return {"told": sorted(messages)}


def report_rotation(plan: dict[str, Any] | None, measured: list[Any]) -> dict[str, Any]:
    """Tell each log set's channel what was rotated, compressed and freed; fail the run if a log set failed."""
    from toilless.common.reporting import send_report
    from toilless.sops.log_rotation.report import log_set_lines, usage_line

    if not plan:
        from airflow.sdk.exceptions import AirflowFailException

        # Planning failed (bad config or Params): nothing was done. Failing here too keeps the run failed (this
        # is its last task) instead of letting it look successful.
        raise AirflowFailException("plan_rotation failed (see its log): nothing was rotated")
    context = get_current_context()
    summary = plan["summary"]
    results = {item["work"]["log_set"]["name"]: item for item in _flatten(measured)}
    failed = [name for name in summary["log_sets"] if name not in results]
    errors = [name for name, item in results.items() if item["rotation"]["errors"] or item["retention"].get("errors")]
    by_channel: dict[str, list[str]] = {}
    for name in summary["log_sets"]:
        lines = by_channel.setdefault(summary["channels"][name], [])
        if name in failed:
            lines.append(f"*{name}*: FAILED: see the task logs of this run; nothing is reported for it")
            continue
        lines.extend(log_set_lines(results[name]))
        lines.append(f"    mount {usage_line(results[name]['usage'])}")
    heading = "Log rotation (dry run: nothing was changed)" if summary["dry_run"] else "Log rotation"
    statuses = {item["usage"]["status"] for item in results.values()}
    status = "critical" if failed or errors or "critical" in statuses else "warning" if "warning" in statuses else "ok"
    if not summary["log_sets"]:
        # An alert that points at no configured log set: nothing was done, and whoever owns log sets is told why.
        by_channel["compliance"] = ["No log set was rotated: the alert matched no configured log set."]
        status = "warning"
    for channel, lines in by_channel.items():
        intro = [f"{len(summary['log_sets'])} log set(s): {summary['why']}"]
        if summary.get("note"):
            intro.append(summary["note"])
        send_report(context, channel=channel, title=heading, lines=[*intro, *lines], status=status)
    if failed or errors:
        from airflow.sdk.exceptions import AirflowFailException

        # Reported already; a retry would only post the same report again.
        raise AirflowFailException(
            f"log rotation incomplete: failed log sets {failed or 'none'}, log sets with errors {errors or 'none'}"
        )
    return {"reported_to": sorted(by_channel), "status": status}
