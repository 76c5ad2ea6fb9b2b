"""The order-processor restart's policy: which Params may tighten it, the action gate it passes when it acts, and
whether a restart is due at all (once per incident).

Pure (no Airflow). ``settings.resolve_settings`` applies the Param rules to a run's Params;
``steps.restart_if_allowed`` builds :func:`restart_gate_policy` and :func:`restart_history` right before the restart,
and acts only on the gate's ``allowed`` and :func:`decide_restart`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from toilless.common import gate
from toilless.common.config import AT_LEAST, FREE, OFF_ONLY, ParamRule, narrower_window, tighten
from toilless.common.policies import window_from_config
from toilless.sops.order_backlog_check.verdict import Verdict

CONFIG_NAME = "order_backlog_check"

#: Params of order_backlog_check that touch a threshold. Only ``stuck_error_repeats`` decides a restart (a lower
#: value calls a processor stuck sooner, so it may only be raised); the backlog thresholds decide "overloaded",
#: which only notifies Ops, so any valid value is taken.
THRESHOLD_RULES = (
    ParamRule("stuck_error_repeats", "stuck_error_repeats", AT_LEAST, "repeats of one error before a restart"),
    ParamRule("outstanding_threshold", "outstanding_orders", FREE),
    ParamRule("oldest_order_age_minutes", "oldest_order_age_minutes", FREE),
)
#: ``allow_restart`` may switch restarts off for a run, never on where the configuration has them off.
RESTART_RULES = (ParamRule("allow_restart", "allow_restart", OFF_ONLY, "automatic restarts"),)
#: Run Params that narrow business hours, and the window key each sets.
HOURS_PARAMS = {
    "business_hours_days": "days",
    "business_hours_start": "start",
    "business_hours_end": "end",
    "business_hours_timezone": "timezone",
}


def tighten_thresholds(configured: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The thresholds with the run's Params applied; raises LooseningParamError for a loosening one."""
    merged, _ = tighten(configured, params, THRESHOLD_RULES, config_name=CONFIG_NAME)
    return merged


def allow_restart(config: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether this run may restart at all: the configured ``restart.allow`` (default on), tightened by the Param."""
    configured = {"allow_restart": bool((config.get("restart") or {}).get("allow", True))}
    merged, _ = tighten(configured, params, RESTART_RULES, config_name=CONFIG_NAME)
    return bool(merged["allow_restart"])


def run_business_hours(
    configured: Mapping[str, Any] | None, params: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, Any] | None:
    """The run's own business hours (configured ones with the Params' keys replaced), only if inside the configured.

    None when no Param sets them. The gate applies them on top of the configured hours.
    """
    given = {key: params[param] for param, key in HOURS_PARAMS.items() if params.get(param) is not None}
    if not given:
        return None
    spec = {**dict(configured or {}), **given}
    narrower_window(
        window_from_config(dict(configured)) if configured else None,
        spec,
        param="business_hours_*",
        config_name=CONFIG_NAME,
        now=now or datetime.now(UTC),
    )
    return spec


def restart_gate_policy(settings: Mapping[str, Any]) -> gate.GatePolicy:
    """What a restart must respect at the moment it acts: dry run, business hours (configured and the run's narrower
    ones), the maintenance window, the cool-down and the circuit breaker of ``gate``."""
    timing = gate.time_policy(
        {},
        {"business_hours": settings.get("business_hours"), "maintenance_window": settings.get("maintenance_window")},
    )
    run_hours = window_from_config(settings.get("run_business_hours"))
    return gate.gate_policy(
        settings.get("gate") or {},
        dry_run=bool(settings.get("dry_run")),
        time=timing,
        extra_business_hours=[run_hours] if run_hours else [],
    )


def restart_history(
    marker: Mapping[str, Any] | None,
    *,
    incident_key: str | None = None,
    now: datetime | None = None,
    memory_hours: float = 24.0,
) -> gate.TargetHistory:
    """What the restart marker (Deployment annotations or the command method's Variable) says about past restarts.

    A restart whose command failed does not start a cool-down and does not count as done for its incident (it did
    not restart anything), but counts for the circuit breaker (it was an attempt).
    """
    marker = marker or {}
    now = now or datetime.now(UTC)
    failed = marker.get("state") == "failed"
    restarted_at = _moment(marker.get("restarted_at"))
    if gate.in_the_future(restarted_at, now=now, what="restart marker"):
        # An edited annotation or a broken clock: it records no restart anyone made and would hold every later
        # restart in cool-down (and "already done") indefinitely.
        restarted_at, failed = None, True
    done = (
        not failed and incident_key is not None and restart_already_done(dict(marker), incident_key, now, memory_hours)
    )
    return gate.TargetHistory(
        last_action_at=restarted_at if not failed else None,
        recent_actions=gate.decode_history(marker.get("history"), now=now),
        incident_done=done,
        incident_note=f"{incident_key} restarted at {marker.get('restarted_at')}" if done else "",
    )


def history_after_restart(marker: Mapping[str, Any] | None, now: datetime, breaker_window: timedelta) -> str:
    """The circuit-breaker history to record with a restart at ``now`` (kept a little longer than the window)."""
    previous = gate.decode_history((marker or {}).get("history"), now=now)
    return gate.encode_history((*previous, now), now=now, keep=max(breaker_window, timedelta(days=1)))


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def restart_already_done(marker: dict[str, Any] | None, incident_key: str, now: datetime, memory_hours: float) -> bool:
    """True if ``marker`` (``{"incident", "restarted_at"}``) records a recent restart for this incident."""
    if not marker or marker.get("incident") != incident_key:
        return False
    try:
        restarted_at = datetime.fromisoformat(str(marker.get("restarted_at")))
    except ValueError:
        # A marker for this incident we cannot date: err on the side of not restarting again.
        return True
    if restarted_at.tzinfo is None:
        restarted_at = restarted_at.replace(tzinfo=ZoneInfo("UTC"))
    if gate.in_the_future(restarted_at, now=now, what="restart marker"):
        # Records no restart anyone made; trusting it would mean "already restarted" for ever.
        return False
    return now - restarted_at < timedelta(hours=memory_hours)


@dataclass(frozen=True)
class RestartDecision:
    act: bool
    reason: str
    allowed_from: datetime | None = None
    already_done: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["allowed_from"] = self.allowed_from.isoformat() if self.allowed_from else None
        return data


def decide_restart(
    verdict: Verdict,
    *,
    method: str,
    allow_restart: bool,
    off_reason: str | None = None,
    marker: dict[str, Any] | None,
    policy_allowed: bool,
    policy_reason: str,
    policy_allowed_from: datetime | None,
    now: datetime,
    memory_hours: float,
) -> RestartDecision:
    """Whether to restart now. Each "no" says why; the policy "no" also says from when it would be allowed."""
    if not verdict.restartable or verdict.incident_key is None:
        return RestartDecision(False, f"a {verdict.verdict} processor is not cured by a restart")
    if method == "none":
        return RestartDecision(False, "restarts are switched off (restart.method = none)")
    if not allow_restart:
        return RestartDecision(False, off_reason or "restarts are switched off for this run (allow_restart = false)")
    if (
        marker
        and marker.get("state") != "failed"
        and restart_already_done(marker, verdict.incident_key, now, memory_hours)
    ):
        return RestartDecision(
            False,
            f"already restarted for this incident ({verdict.incident_key}) at {marker.get('restarted_at')}: "
            "a second restart would not help",
            already_done=True,
        )
    if not policy_allowed:
        return RestartDecision(False, f"not now: {policy_reason}", allowed_from=policy_allowed_from)
    return RestartDecision(True, f"restarting for {verdict.incident_key}: {policy_reason}")


def marker_time(marker: Mapping[str, Any]) -> datetime:
    """When the marker says the restart happened (the earliest moment when it cannot be read)."""
    moment = _moment(marker.get("restarted_at"))
    return moment if moment is not None else datetime.min.replace(tzinfo=UTC)
