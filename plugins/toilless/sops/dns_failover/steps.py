"""The task bodies of ``dns_failover``: settings, provider and DNS probes, the action gate, the report.

The only module of the package that touches Airflow (lazily, inside functions: the DAG file imports this at parse
time). The judgement is in the pure modules: ``health`` (what the answers mean), ``decide`` (what to do),
``failover`` (acting once per incident), ``messages`` (the report).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from toilless.sops.dns_failover import decide as decisions
from toilless.sops.dns_failover import failover, health, logs, messages
from toilless.sops.dns_failover.settings import DAG_ID, resolve, standby_of

log = logging.getLogger(__name__)

#: Run state (toilless.common.state): this SOP's failover marker (incident, steps, history of failovers).
MARKER_KEY = f"toilless_{DAG_ID}_marker"


# -- settings ------------------------------------------------------------------------------------------------------
def resolve_settings(params: Mapping[str, Any], run_id: str | None = None) -> dict[str, Any]:
    """The run's settings and its incident key; bad config or Params fail the run now (InvalidInput, not retried)."""
    from toilless.common.config import load_config
    from toilless.common.params import alert_from_params

    settings = resolve(load_config(DAG_ID), params)
    alert = alert_from_params(dict(params))
    settings["incident"] = incident_key(alert, run_id)
    settings["alert"] = (
        {key: str((alert or {}).get(key) or "")[:200] for key in ("alertname", "startsAt", "fingerprint")}
        if alert
        else None
    )
    settings["started_at"] = datetime.now(UTC).isoformat()
    return settings


def incident_key(alert: Mapping[str, Any] | None, run_id: str | None) -> str:
    """One incident = one firing alert (fingerprint + start); a manual run is its own incident."""
    if alert and alert.get("fingerprint"):
        return f"alert:{str(alert['fingerprint'])[:64]}:{str(alert.get('startsAt') or '')[:40]}"
    return f"run:{str(run_id or 'manual')[:200]}"


# -- the provider and the probes ---------------------------------------------------------------------------------
def find_active_server(settings: Mapping[str, Any]) -> dict[str, Any]:
    from toilless.sops.dns_failover.providers import build_provider

    active = build_provider(settings).active_server()
    found = {
        "active": active,
        "standby": standby_of(settings, active),
        "provider": settings["provider"],
        "found_at": datetime.now(UTC).isoformat(),
    }
    log.info("Active DNS server (%s): %s; standby %s", settings["provider"], active, found["standby"])
    return found


def probe(settings: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One server: the raw probe and its verdict (``health.judge``)."""
    from toilless.hooks.dns import probe_server

    server = settings["servers"][name]
    probe_settings = settings["probe"]
    raw = probe_server(
        server["address"],
        int(server["port"]),
        settings["queries"],
        tries=int(probe_settings["tries"]),
        timeout_seconds=float(probe_settings["timeout_seconds"]),
    )
    expected = {(q["name"], q["type"]): q["expect"] for q in settings["queries"]}
    verdict = health.judge(
        name,
        raw["outcomes"],
        tcp_port_open=raw["tcp_port_open"],
        expected=expected,
        max_latency_ms=float(probe_settings["max_latency_ms"]),
    )
    return {**verdict.as_dict(), "probe_ms": raw["elapsed_ms"]}


def probe_both(settings: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """Both servers at once (a dead one costs its timeouts, in parallel with the other)."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    names = [found["active"], found["standby"]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(names, pool.map(lambda name: probe(settings, name), names), strict=True))
    return {
        "servers": results,
        "round_ms": round((time.perf_counter() - started) * 1000, 2),
        "probed_at": datetime.now(UTC).isoformat(),
    }


def probe_dns_servers(settings: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """Both servers probed; the active server's recent log lines where a log source is configured."""
    probed = probe_both(settings, found)
    active = found["active"]
    probed["active_log"] = logs.recent_lines(
        settings["servers"][active],
        allowed_roots=settings["log"]["allowed_roots"],
        max_lines=int(settings["log"]["max_lines"]),
        max_bytes=int(settings["log"]["max_bytes"]),
    )
    for name, result in probed["servers"].items():
        log.info("%s: %s (%s)", name, result["state"], "; ".join(result["reasons"][:3]))
    return probed


def decide_failover(found: Mapping[str, Any], probed: Mapping[str, Any]) -> dict[str, Any]:
    decision = decisions.decide(found["active"], found["standby"], probed["servers"]).as_dict()
    decision["decided_at"] = datetime.now(UTC).isoformat()
    log.info("Decision: %s: %s", decision["action"], decision["reason"])
    return decision


def look_again(settings: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """One look of the recovery wait (the trigger calls it in a thread): both servers' states."""
    probed = probe_both(settings, found)
    servers = probed["servers"]
    return {
        "recovered": servers[found["active"]]["state"] == health.ANSWERING,
        "active_state": servers[found["active"]]["state"],
        "standby_state": servers[found["standby"]]["state"],
        "detail": "; ".join(servers[found["active"]]["reasons"][:3]),
        "round_ms": probed["round_ms"],
    }


# -- acting --------------------------------------------------------------------------------------------------------
def _gate_policy(settings: Mapping[str, Any]) -> Any:
    from toilless.common import gate
    from toilless.common.config import load_config

    return gate.sop_gate_policy(load_config("toilless"), settings)


def _marker_store() -> tuple[Any, Any]:
    from toilless.common.state import read_state, write_state

    def read() -> dict[str, Any]:
        # Unreadable: an unknown incident's marker, which matches no real incident.
        value = read_state(MARKER_KEY)
        return value if value is not None else {"incident": "unreadable"}

    return read, lambda marker: write_state(MARKER_KEY, marker)


def shut_down_active(
    settings: Mapping[str, Any],
    found: Mapping[str, Any],
    decision: Mapping[str, Any],
    wait: Mapping[str, Any] | None,
    approval: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """After the wait (if any): the final decision; then, for a failover, the standby re-checked and the shutdown."""
    from toilless.sops.dns_failover.providers import build_provider

    final = decisions.after_wait(decision, wait).as_dict()
    result: dict[str, Any] = {"final": final, "acted": False, "ok": False, "outcome": "not_needed", "gate": None}
    if final["action"] != decisions.FAILOVER_NOW:
        result["detail"] = final["reason"]
        return result
    if not settings["allow_failover"]:
        return {**result, "outcome": "switched_off", "detail": "failover is switched off (allow_failover): report only"}
    if (
        (settings.get("approval") or {}).get("required")
        and not settings["dry_run"]
        and (approval or {}).get("chosen_options") != ["Approve"]
    ):
        return {**result, "outcome": "not_approved", "detail": "the failover was not approved: nothing changed"}
    # The moment of acting: the standby must still answer correctly, else a person is paged and nothing changes.
    standby_now = probe(settings, found["standby"])
    result["standby_recheck"] = {"state": standby_now["state"], "reasons": standby_now["reasons"][:3]}
    if standby_now["state"] != health.ANSWERING:
        final.update(
            action=decisions.PAGE,
            standby_state=standby_now["state"],
            reason=f"the standby {found['standby']} is {standby_now['state']} now: no failover; a person must look now",
        )
        return {**result, "outcome": "standby_broken", "detail": final["reason"]}
    read, write = _marker_store()
    done = failover.shut_down_once(
        build_provider(settings),
        incident=settings["incident"],
        active=found["active"],
        standby=found["standby"],
        policy=_gate_policy(settings),
        read_marker=read,
        write_marker=write,
        memory_hours=float(settings.get("incident_memory_hours", 24)),
    )
    result.update(done)
    result["at"] = datetime.now(UTC).isoformat()
    if done.get("acted") and not done.get("ok"):
        # SOP: if the shutdown fails, make sure its DNS process is down; the failover below is forced either way.
        old = probe(settings, found["active"])
        result["process_check"] = {"state": old["state"], "reasons": old["reasons"][:3]}
    return result


def fail_over_to_standby(
    settings: Mapping[str, Any], found: Mapping[str, Any], shutdown: Mapping[str, Any]
) -> dict[str, Any]:
    """Make the standby active, forced when the shutdown did not succeed; once per incident."""
    from toilless.sops.dns_failover.providers import build_provider

    proceed = shutdown["final"]["action"] == decisions.FAILOVER_NOW and shutdown["outcome"] in (
        failover.DONE,
        failover.FAILED,
        "already_tried",
        "already_failed_over",
    )
    if not proceed:
        return {"acted": False, "ok": False, "outcome": "not_needed", "detail": shutdown.get("detail"), "gate": None}
    read, write = _marker_store()
    policy = _gate_policy(settings)
    return failover.fail_over_once(
        build_provider(settings),
        incident=settings["incident"],
        active=found["active"],
        standby=found["standby"],
        force=not shutdown.get("ok"),
        policy=policy,
        read_marker=read,
        write_marker=write,
        memory_hours=float(settings.get("incident_memory_hours", 24)),
        breaker_window=policy.breaker_window,
    )


def verify_failover(
    settings: Mapping[str, Any], found: Mapping[str, Any], moved: Mapping[str, Any], *, attempts: int = 10
) -> dict[str, Any]:
    """The new active server answers every name correctly and the provider reports it active."""
    from toilless.sops.dns_failover.providers import build_provider

    if not moved.get("ok"):
        return {"verified": None, "detail": "no failover to verify"}
    provider = build_provider(settings)
    standby = found["standby"]
    last: dict[str, Any] = {}
    for attempt in range(attempts):
        active = provider.active_server()
        checked = probe(settings, standby)
        last = {"provider_active": active, "state": checked["state"], "reasons": checked["reasons"][:3]}
        if active == standby and checked["state"] == health.ANSWERING:
            return {
                "verified": True,
                "detail": f"{standby} is active and answers every name correctly",
                **last,
                "at": datetime.now(UTC).isoformat(),
            }
        if attempt + 1 < attempts:
            time.sleep(float(settings["poll_seconds"]) if settings["poll_seconds"] < 5 else 5.0)
    raise RuntimeError(
        f"failover to {standby} not verified: provider says {last.get('provider_active')} is active, "
        f"{standby} is {last.get('state')} ({'; '.join(last.get('reasons', []))})"
    )


# -- the report ----------------------------------------------------------------------------------------------------
def report_failover(
    context: Mapping[str, Any],
    settings: Mapping[str, Any],
    found: Mapping[str, Any],
    probed: Mapping[str, Any],
    decision: Mapping[str, Any],
    wait: Mapping[str, Any] | None,
    shutdown: Mapping[str, Any] | None,
    moved: Mapping[str, Any] | None,
    verified: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The timeline to networking (asked to restore the standby) and on-call; a broken standby pages on-call."""
    from toilless.common.reporting import send_report

    if shutdown is None:
        # A Reject (or no answer) to the approval skips the shutdown and everything after it.
        final = decisions.after_wait(decision, wait).as_dict()
        shutdown = {
            "final": final,
            "outcome": "not_approved",
            "detail": "the failover was not approved: nothing changed",
        }
    moved = moved or {"outcome": "not_needed"}
    report = messages.report(
        settings,
        found=found,
        probed=probed,
        decision=decision,
        wait=wait,
        shutdown=shutdown,
        moved=moved,
        verified=verified,
    )
    channels = settings["channels"]
    sent = []
    for audience in report["audiences"]:
        channel = channels[audience]
        send_report(context, channel=channel, title=report["title"], lines=report["lines"], status=report["status"])
        sent.append(channel)
    return {**report, "channels": sent}


def choose_path(
    settings: Mapping[str, Any], found: Mapping[str, Any], decision: Mapping[str, Any], wait: Mapping[str, Any] | None
) -> str:
    """A person's approval first when configured and a failover is due (not for a dry run: it changes nothing)."""
    final = decisions.after_wait(decision, wait)
    needs = bool((settings.get("approval") or {}).get("required"))
    if final.action == decisions.FAILOVER_NOW and needs and not settings["dry_run"] and settings["allow_failover"]:
        return "request_approval"
    return "shut_down_active"
