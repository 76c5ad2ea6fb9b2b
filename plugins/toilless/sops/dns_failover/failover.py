"""Shutting the active server down and failing over to the standby, each exactly once per incident (no Airflow).

The provider (``providers``) and the marker store are arguments, so the crash tests drive this with a provider
that dies mid-way. The marker (run state, ``toilless.common.state``) names the incident and records each step as
``started`` before the call and ``done``/``failed`` after it. Before acting, each step re-reads the provider: a
failover that already happened (an earlier try whose answer was lost, another person) is found and not repeated.
A shutdown whose marker says ``started`` (the worker died during the call) is not repeated either: it counts as
not confirmed, so the failover is forced, as the SOP says for a shutdown that did not succeed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.common import gate
from toilless.incidents import action_result
from toilless.sops.dns_failover.providers import DnsProvider

log = logging.getLogger(__name__)

ACTION = "fail over"
STARTED = "started"
DONE = "done"
FAILED = "failed"

ReadMarker = Callable[[], dict[str, Any]]
WriteMarker = Callable[[dict[str, Any]], None]


def target_history(
    marker: Mapping[str, Any], incident: str, *, now: datetime, memory_hours: float
) -> gate.TargetHistory:
    """What the marker says for the gate: the last failover, recent failovers, and whether this incident's is done."""
    last = _moment(marker.get("failed_over_at"))
    if gate.in_the_future(last, now=now, what="failover marker"):
        last = None
    same = marker.get("incident") == incident
    done = same and (marker.get("failover") or {}).get("state") == DONE
    if done and last is not None and now - last > timedelta(hours=memory_hours):
        done = False
    return gate.TargetHistory(
        last_action_at=None if same else last,
        recent_actions=gate.decode_history(marker.get("history"), now=now),
        incident_done=done,
        incident_note=f"failed over at {marker.get('failed_over_at')}" if done else "",
    )


def shut_down_once(
    provider: DnsProvider,
    *,
    incident: str,
    active: str,
    standby: str,
    policy: gate.GatePolicy,
    read_marker: ReadMarker,
    write_marker: WriteMarker,
    memory_hours: float = 24.0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Shut the active server down for ``incident`` unless this incident's shutdown was already tried.

    Returns ``{"acted", "ok", "outcome", "detail", "gate"}``: ``ok`` is whether the server is known to be shut down
    by this step (False: the failover must be forced).
    """
    marker = read_marker()
    now = now or datetime.now(UTC)
    result: dict[str, Any] = {"server": active, "acted": False, "ok": False, "gate": None}
    recorded = (marker.get("shutdown") or {}) if marker.get("incident") == incident else {}
    if recorded.get("state") in (STARTED, DONE, FAILED):
        ok = recorded.get("state") == DONE
        detail = f"shutdown of {active} already {'done' if ok else 'tried, not confirmed'} for this incident at {recorded.get('at')}: not again"
        log.info("%s", detail)
        return {**result, "ok": ok, "outcome": "already_tried", "detail": detail}
    current = provider.active_server()
    if current != active:
        detail = f"{current} is already the active server (not {active}): nothing to shut down"
        return {**result, "outcome": "already_failed_over", "detail": detail, "active_now": current}
    verdict = gate.check_action(
        ACTION,
        active,
        now=now,
        policy=policy,
        history=target_history(marker, incident, now=now, memory_hours=memory_hours),
    )
    result["gate"] = verdict.as_dict()
    if not verdict.allowed:
        outcome = "dry_run" if verdict.check == gate.DRY_RUN else "gate_refused"
        log.warning("Not shutting down %s: %s", active, verdict.reason)
        return {**result, "outcome": outcome, "detail": verdict.reason}
    base = _base_marker(marker, incident, active, standby)
    write_marker({**base, "shutdown": {"state": STARTED, "at": now.isoformat()}})
    with action_result("shut down", active) as act:
        done = provider.shutdown(active)
        act.check(done.get("ok"), done.get("detail"))
    state = DONE if done.get("ok") else FAILED
    write_marker({**base, "shutdown": {"state": state, "at": now.isoformat(), "detail": str(done.get("detail"))[:300]}})
    log.info("Shutdown of %s: %s (%s)", active, state, done.get("detail"))
    return {**result, "acted": True, "ok": bool(done.get("ok")), "outcome": state, "detail": done.get("detail")}


def fail_over_once(
    provider: DnsProvider,
    *,
    incident: str,
    active: str,
    standby: str,
    force: bool,
    policy: gate.GatePolicy,
    read_marker: ReadMarker,
    write_marker: WriteMarker,
    memory_hours: float = 24.0,
    breaker_window: timedelta = timedelta(hours=24),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Make ``standby`` the active server (``force`` when the shutdown was not confirmed), once per incident.

    Raises RuntimeError when the provider says the failover failed (the task's retry re-reads the provider first).
    """
    marker = read_marker()
    now = now or datetime.now(UTC)
    result: dict[str, Any] = {"from": active, "to": standby, "forced": force, "acted": False, "gate": None}
    current = provider.active_server()
    base = _base_marker(marker, incident, active, standby)
    if current == standby:
        recorded = (marker.get("failover") or {}) if marker.get("incident") == incident else {}
        if recorded.get("state") != DONE and recorded.get("state") == STARTED:
            # This incident's call went through before the worker died: record it, so cool-down and breaker count it.
            _record_failover(write_marker, marker, base, now, force, breaker_window)
        detail = f"{standby} is already the active server: no failover call"
        log.info("%s", detail)
        return {**result, "outcome": "already_active", "detail": detail, "ok": True}
    if current != active:
        raise RuntimeError(f"the active server is now {current}, neither {active} nor {standby}: not failing over")
    verdict = gate.check_action(
        ACTION,
        active,
        now=now,
        policy=policy,
        history=target_history(marker, incident, now=now, memory_hours=memory_hours),
    )
    result["gate"] = verdict.as_dict()
    if not verdict.allowed:
        outcome = "dry_run" if verdict.check == gate.DRY_RUN else "gate_refused"
        log.warning("Not failing over to %s: %s", standby, verdict.reason)
        return {**result, "outcome": outcome, "detail": verdict.reason, "ok": False}
    write_marker({**base, "failover": {"state": STARTED, "at": now.isoformat(), "forced": force}})
    with action_result("forced failover" if force else "failover", standby) as act:
        done = provider.failover(standby, force=force)
        act.check(done.get("ok"), done.get("detail"))
    if not done.get("ok"):
        write_marker({**base, "failover": {"state": FAILED, "at": now.isoformat(), "forced": force}})
        raise RuntimeError(f"failover to {standby} failed: {str(done.get('detail'))[:300]}")
    _record_failover(write_marker, marker, base, now, force, breaker_window)
    log.info("Failed over from %s to %s%s", active, standby, " (forced)" if force else "")
    return {**result, "acted": True, "outcome": DONE, "detail": done.get("detail"), "ok": True, "at": now.isoformat()}


def _base_marker(marker: Mapping[str, Any], incident: str, active: str, standby: str) -> dict[str, Any]:
    """The marker for this incident, keeping the history of earlier failovers (for cool-down and breaker)."""
    base = (
        dict(marker)
        if marker.get("incident") == incident
        else {key: marker[key] for key in ("history", "failed_over_at") if key in marker}
    )
    base.update(incident=incident, active=active, standby=standby)
    return base


def _record_failover(
    write_marker: WriteMarker,
    marker: Mapping[str, Any],
    base: dict[str, Any],
    now: datetime,
    force: bool,
    breaker_window: timedelta,
) -> None:
    history = (*gate.decode_history(marker.get("history"), now=now), now)
    write_marker(
        {
            **base,
            "failover": {"state": DONE, "at": now.isoformat(), "forced": force},
            "failed_over_at": now.isoformat(),
            "history": gate.encode_history(history, now=now, keep=max(breaker_window, timedelta(days=1))),
        }
    )


def _moment(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
