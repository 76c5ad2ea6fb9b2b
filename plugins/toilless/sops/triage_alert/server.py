"""Alert triage's silences from the Toilless app in Airflow's API server: the Slack **Silence 1h / 4h** buttons of
the intake's message (:func:`silence_incident`, registered by toilless.slack_actions) and the REST expiry
(``POST /toilless/incidents/silences/{id}/expire``, toilless.incidents.api). The API server has no task supervisor,
so the list of silences Toilless created (the same Variable the tasks use) is read and written in the metadata
database here; the silences themselves are made and ended by steps.py's rules (AlertmanagerHook, the maximum).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from toilless.common.state import server_read_state, server_write_state
from toilless.sops.triage_alert import silences

#: One silence per incident and duration even when two presses arrive at once in this API server process (the
#: Alertmanager lookup below catches a press handled by another process, except in the same instant).
_SLACK_SILENCE_LOCK = threading.Lock()


def silence_incident(incident_id: str, hours: Any, *, by: str, now: datetime | None = None) -> dict[str, Any]:
    """Silence an incident's alert for ``hours`` on behalf of ``by`` (a Slack press; runs in the API server).

    Matchers are exactly the alert's labels as the intake recorded them (the incident's ``alert_received`` event),
    at most ``max_silence_minutes`` (config). Once per incident and duration: a silence of this incident and
    duration still active in Alertmanager is answered (``already``), not duplicated. The silence goes into the
    list of silences Toilless created (listed by the weekly handoff, expirable with :func:`expire_silence`) and
    on the incident's timeline as an action.

    :return: ``{"silence_id", "alertname", "ends_at", "created_by", "already"}``
    :raises toilless.incidents.events.UnknownIncident: no such incident, or none the intake recorded labels for
    :raises toilless.sops.triage_alert.silences.SilenceError: over the maximum, or labels Alertmanager would refuse
    """
    from toilless.hooks.alertmanager import AlertmanagerHook
    from toilless.incidents import action_result, db, store
    from toilless.incidents import events as ev
    from toilless.sops.triage_alert.steps import DAG_ID, load_config

    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
        raise silences.SilenceError(f"a silence lasts a positive number of hours, not {str(hours)[:20]!r}")
    received = [item for item in store.timeline(db.engine(), incident_id) if item["kind"] == ev.ALERT_RECEIVED]
    labels = (received[0]["data"].get("labels") if received else None) or {}
    if not labels:
        raise ev.UnknownIncident(f"no incident {incident_id!r} with the alert's labels on record: nothing silenced")
    labels = {str(name): str(value) for name, value in labels.items()}
    alertname = labels.get("alertname", "alert")
    settings = load_config(DAG_ID)
    now = now or datetime.now(UTC)
    request = silences.build_silence(
        labels,
        minutes=float(hours) * 60,
        max_minutes=float(settings["max_silence_minutes"]),
        created_by=f"{by} (Slack, via {settings['silence_created_by']})"[: silences.MAX_CREATED_BY_CHARS],
        reason=f"Silenced from Slack by {by} for {hours:g}h (incident {incident_id})",
        incident=f"{incident_id}:{hours:g}h",
        now=now,
    )
    hook = AlertmanagerHook(alertmanager_conn_id=settings["alertmanager_conn_id"])
    tag = f"{incident_id}:{hours:g}h"
    with _SLACK_SILENCE_LOCK:
        filters = [silences.filter_matcher("alertname", alertname)] if "alertname" in labels else None
        existing = next(
            (s for s in hook.list_silences(filters=filters) if silences.same_silence(s, request, tag)), None
        )
        if existing:
            return {
                "silence_id": existing["id"],
                "alertname": alertname,
                "ends_at": existing.get("endsAt"),
                "created_by": existing.get("createdBy"),
                "already": True,
            }
        action: dict[str, Any] = {"minutes": float(hours) * 60, "ends_at": request.body()["endsAt"], "via": "slack"}
        with action_result(f"silence {hours:g}h", alertname, incident_id=incident_id, actor=by, data=action):
            action["silence_id"] = silence_id = hook.create_silence(request.body(), now=now)
        _note_silence(silence_id, request, alertname=alertname, incident_id=incident_id, settings=settings, now=now)
    return {
        "silence_id": silence_id,
        "alertname": alertname,
        "ends_at": request.body()["endsAt"],
        "created_by": request.created_by,
        "already": False,
    }


def _note_silence(
    silence_id: str,
    request: silences.SilenceRequest,
    *,
    alertname: str,
    incident_id: str,
    settings: Mapping[str, Any],
    now: datetime,
) -> None:
    """Add a Slack-made silence to the list ."""
    from toilless.sops.triage_alert.steps import SILENCES_STATE_KEY

    registry = server_read_state(SILENCES_STATE_KEY) or {}
    registry = silences.record(registry, silence_id, request, alertname=alertname, run_id=f"slack:{incident_id}")
    registry[silence_id]["incident_id"] = incident_id
    keep = timedelta(days=float(settings.get("silence_list_keep_days", 8)))
    server_write_state(SILENCES_STATE_KEY, silences.prune(registry, now=now, keep=keep))
