"""REST routes of the incident record on the Toilless app (mounted with the intake at ``/toilless``).

* ``POST /toilless/incidents/{incident_id}/ack`` with ``{"by": "alice", "via": "rest"}``: acknowledge
  (:func:`toilless.incidents.ack.acknowledge`). 200 with who acknowledged first and when (``already`` when someone
  did before); 404 unknown incident; 422 malformed ``by``/``via``; 401 without the intake's credentials; 503 when
  the incident database is unreachable (nothing stored: retry).
* ``POST /toilless/incidents/{incident_id}/severity`` with ``{"severity": "P1", "by": "alice"}``: 422 outside
  P0-P3, 404 unknown incident.
* ``GET /toilless/incidents/{incident_id}``: the incident and its timeline (same credentials).
* ``POST /toilless/incidents/silences/{silence_id}/expire`` with ``{"by": "alice"}``: end early a silence Toilless
  created (alert triage or a Slack Silence button; the weekly handoff lists them). 200 (also when it had already
  ended), 404 not one of Toilless' silences, 422 not a silence id, 503 Alertmanager unreachable.

Airflow does not authenticate plugin apps: these routes check the same credentials as the Alertmanager webhook
(the intake's Connection), before reading the body.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from toilless.intake.auth import authorized

log = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="toilless", Basic realm="toilless"'}
MAX_BODY_BYTES = 4096


def incidents_router(provider: Any) -> APIRouter:
    """The routes, authenticated with ``provider.credentials()`` (the intake's settings provider)."""
    router = APIRouter(prefix="/incidents", tags=["incidents"])

    async def refused(request: Request) -> JSONResponse | None:
        try:
            credentials = await run_in_threadpool(provider.credentials)
        except Exception:
            log.exception("Toilless credentials could not be read")
            return _error(503, "the Toilless settings could not be read; see the API server log")
        if credentials is None or not authorized(request.headers.get("authorization"), credentials):
            return _error(401, "missing or invalid credentials", headers=_CHALLENGE)
        return None

    async def json_body(request: Request) -> Any:
        """The authenticated request's JSON body, or the refusal to answer with (401/503, 413, 400)."""
        if (answer := await refused(request)) is not None:
            return answer
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(body or b"{}")
        except ValueError:
            return _error(400, "body is not JSON")

    @router.post("/{incident_id}/ack")
    async def ack(incident_id: str, request: Request) -> JSONResponse:
        from toilless.incidents.ack import AcknowledgeUnavailable, acknowledge
        from toilless.incidents.events import IncidentError, UnknownIncident

        if isinstance(data := await json_body(request), JSONResponse):
            return data
        if not isinstance(data, dict) or not isinstance(data.get("by"), str):
            return _error(422, 'body must be {"by": "<user>", "via": "rest"}')
        try:
            result = await run_in_threadpool(acknowledge, incident_id, data["by"], str(data.get("via") or "rest"))
        except UnknownIncident as err:
            return _error(404, str(err))
        except IncidentError as err:
            return _error(422, str(err))
        except AcknowledgeUnavailable as err:
            return _error(503, f"{err}; the acknowledgement was NOT stored, retry")
        return JSONResponse(result)

    @router.post("/{incident_id}/severity")
    async def severity(incident_id: str, request: Request) -> JSONResponse:
        """``{"severity": "P1", "by": "alice"}``: 200, 404 unknown incident, 422 outside P0-P3."""
        from toilless.incidents.ack import AcknowledgeUnavailable, set_severity
        from toilless.incidents.events import IncidentError, UnknownIncident

        if isinstance(data := await json_body(request), JSONResponse):
            return data
        if not isinstance(data, dict):
            return _error(422, 'body must be {"severity": "P0".."P3", "by": "<user>"}')
        try:
            result = await run_in_threadpool(set_severity, incident_id, data.get("severity"), str(data.get("by") or ""))
        except UnknownIncident as err:
            return _error(404, str(err))
        except IncidentError as err:
            return _error(422, str(err))
        except AcknowledgeUnavailable as err:
            return _error(503, f"{err}; nothing stored, retry")
        return JSONResponse(result)

    @router.post("/silences/{silence_id}/expire")
    async def expire(silence_id: str, request: Request) -> JSONResponse:
        if isinstance(data := await json_body(request), JSONResponse):
            return data
        by = data.get("by") if isinstance(data, dict) else None
        if not isinstance(by, str) or not by.strip() or len(by) > 100:
            return _error(422, 'body must be {"by": "<user>"}')
        from toilless.common.state import server_read_state, server_write_state
        from toilless.sops.triage_alert import steps
        from toilless.sops.triage_alert.silences import SilenceError

        try:
            result = await run_in_threadpool(
                steps.expire_silence,
                silence_id,
                by=by.strip(),
                read=server_read_state,
                write=server_write_state,
            )
        except SilenceError as err:
            return _error(422, str(err))
        except steps.SilenceNotToilless as err:
            return _error(404, str(err))
        except Exception as err:
            log.exception("Silence %s could not be expired", silence_id[:64])
            return _error(503, f"the silence could not be expired now ({type(err).__name__}); retry")
        return JSONResponse(result)

    @router.get("/{incident_id}")
    async def show(incident_id: str, request: Request) -> JSONResponse:
        from toilless.incidents import db, store

        if (answer := await refused(request)) is not None:
            return answer
        try:
            row = await run_in_threadpool(store.get_incident, db.engine(), incident_id[:64])
            events = await run_in_threadpool(store.timeline, db.engine(), incident_id[:64]) if row else []
        except Exception:
            log.exception("Incident %s could not be read", incident_id[:64])
            return _error(503, "the incident database could not be read now; retry")
        if row is None:
            return _error(404, f"no incident {incident_id[:64]!r}")
        return JSONResponse({"incident": row, "timeline": events})

    return router


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
