"""Msk cpu headroom: the task bodies of dags/msk_cpu_headroom.py, the only module of the SOP that touches Airflow (through
``toilless.common``: config and state are Variables, the report goes to Slack).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from toilless.common import gate
from toilless.common.config import AT_LEAST, OFF_ONLY, ParamRule, load_config, tighten
from toilless.common.reporting import send_report
from toilless.common.state import read_state, write_state
from toilless.sops.msk_cpu_headroom import decide

log = logging.getLogger(__name__)

DAG_ID = "msk_cpu_headroom"
TITLE = "Msk cpu headroom"
ACTION = "act"
#: Run state (toilless.common.state): recent actions per target, for the cool-down and the circuit breaker.
STATE_KEY = f"toilless_{DAG_ID}_actions"
#: How each Param relates to the configuration: it may only tighten it (toilless.common.config).
PARAM_RULES = (
    ParamRule("threshold", "threshold", AT_LEAST, "the value that must be reached before acting"),
    ParamRule("allow_action", "allow_action", OFF_ONLY, "the automatic action"),
)


def resolve_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration (YAML + Variable) with the run's Params applied; a loosening Param fails the run."""
    settings, notes = tighten(load_config(DAG_ID), params, PARAM_RULES, config_name=DAG_ID)
    settings["dry_run"] = bool(params.get("dry_run"))
    settings["notes"] = notes
    return settings


def measure_target(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The value to judge. The scaffold's stand-in reads it from the ``stand_in`` setting: replace it with a hook
    call (plugins/toilless/hooks/<system>.py) that reads the real system."""
    stand_in = settings["stand_in"]
    return {"target": str(stand_in["target"]), "value": float(stand_in["value"])}


def decide_action(settings: Mapping[str, Any], measurement: Mapping[str, Any]) -> dict[str, Any]:
    return decide.decide(
        float(measurement["value"]),
        threshold=float(settings["threshold"]),
        allow_action=bool(settings["allow_action"]),
        target=str(measurement["target"]),
    ).as_dict()


def act_if_allowed(settings: Mapping[str, Any], decision: Mapping[str, Any]) -> dict[str, Any]:
    """Act on the target if the decision says so and the action gate allows it now; record the action."""
    if not decision["act"]:
        return {"acted": False, "reason": "nothing to do", "gate": None}
    target = str(decision["target"])
    now = datetime.now(UTC)
    state = read_state(STATE_KEY) or {}
    recent = gate.decode_history(state.get(target), now=now)
    time_policy = gate.time_policy(
        load_config("toilless"),
        settings,
        business_hours=False,
        maintenance_window=bool(settings.get("respect_maintenance_window", True)),
    )
    policy = gate.gate_policy(settings.get("gate"), dry_run=bool(settings["dry_run"]), time=time_policy)
    history = gate.TargetHistory(last_action_at=max(recent, default=None), recent_actions=recent)
    verdict = gate.check_action(ACTION, target, now=now, policy=policy, history=history)
    if not verdict.allowed:
        log.info("Not acting on %s: %s", target, verdict.reason)
        return {"acted": False, "reason": verdict.reason, "gate": verdict.as_dict()}
    # The action itself goes here: a hook call that changes the system (the scaffold only records it).
    log.info("Acting on %s: %s", target, decision["reason"])
    state[target] = gate.encode_history([*recent, now], now=now, keep=policy.breaker_window)
    write_state(STATE_KEY, state)
    return {"acted": True, "reason": verdict.reason, "gate": verdict.as_dict()}


def report_outcome(
    context: Mapping[str, Any], settings: Mapping[str, Any], decision: Mapping[str, Any], outcome: Mapping[str, Any]
) -> dict[str, Any]:
    title = f"{TITLE} (dry run: nothing was changed)" if settings["dry_run"] else TITLE
    return send_report(
        context,
        channel=settings["report_channel"],
        title=title,
        lines=decide.report_lines(decision, outcome, settings["notes"]),
        status=decide.report_status(decision, outcome),
    )
