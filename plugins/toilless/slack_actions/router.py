"""``POST /toilless/slack/actions``: Slack's interactivity Request URL. Included by the intake app.

Answers (Slack only needs a 200 within 3 seconds; the JSON says what happened, for the press CLI and tests):

* 200 ``decided``: the answer was written (Airflow's HITL); the message is updated after the answer is sent;
* 200 ``already_decided``: someone (or the timeout) answered first; nothing is written, the presser is told
  ("already decided: rejected by timeout at ..."), and the message shows the decision;
* 401: no, a wrong, or an old (> 5 min) signature, or a replay of a request already handled: nothing is read
  beyond the headers and the body's bytes, nothing decided, nobody told (the response_url is not trusted);
* 403: the presser is not mapped to an Airflow user, or that user may not answer this question;
* 400 (not a button press of ours), 404 (question gone), 409 (task no longer waiting, or asked again), 413 (body
  too large), 503 (no signing secret configured, or an action not available yet).

Airflow does not authenticate plugin routes; Slack's signature is this route's authentication.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from toilless.slack_actions import buttons, decisions, registry
from toilless.slack_actions.decisions import Outcome
from toilless.slack_actions.settings import SettingsProvider
from toilless.slack_actions.signing import ReplayGuard, SignatureError, verify
from toilless.slack_actions.slack_update import MessageUpdater

log = logging.getLogger(__name__)

PATH = "/slack/actions"


def create_router(
    provider: SettingsProvider | None = None,
    *,
    clock: Callable[[], float] = time.time,
    updater_factory: Callable[..., MessageUpdater] = MessageUpdater,
) -> APIRouter:
    """The router. Tests pass their own clock (an old timestamp) and updater."""
    provider = provider or SettingsProvider()
    replays = ReplayGuard()
    router = APIRouter()

    @router.post(PATH)
    async def slack_actions(request: Request, background: BackgroundTasks) -> JSONResponse:
        try:
            settings, secret = await run_in_threadpool(provider.get)
        except Exception:
            log.exception("Slack actions settings could not be read")
            return _answer(Outcome(decisions.UNAVAILABLE, 503, "settings could not be read; see the API server log"))
        if secret is None:
            return _answer(Outcome(decisions.UNAVAILABLE, 503, "no signing secret configured: nothing is accepted"))
        body = await _bounded_body(request, settings.max_payload_bytes)
        if body is None:
            return _answer(Outcome(decisions.INVALID, 413, f"body larger than {settings.max_payload_bytes} bytes"))
        now = clock()
        signature = request.headers.get("x-slack-signature")
        try:
            verify(
                secret=secret.reveal(),
                timestamp=request.headers.get("x-slack-request-timestamp"),
                signature=signature,
                body=body,
                now=now,
                max_age=settings.max_age_seconds,
            )
        except SignatureError as err:
            # The reason only (never the secret, the expected signature or the body).
            log.warning("Slack action refused from %s: %s", request.client.host if request.client else "?", err)
            return _answer(Outcome(decisions.REFUSED, 401, f"not a verified Slack request: {err}"))
        if not replays.first_time(str(signature), now):
            log.warning("Slack action refused: a replay of a request already handled")
            return _answer(Outcome(decisions.REFUSED, 401, "replayed request: already handled once"))

        try:
            payload, press = parse_press(body, settings.respondents)
        except ValueError as err:
            return _answer(Outcome(decisions.INVALID, 400, str(err)))
        handler = registry.handler_for(press.kind)
        if handler is None:
            return _answer(Outcome(decisions.INVALID, 400, f"no handler for buttons of kind {press.kind!r}"))
        try:
            outcome = await run_in_threadpool(handler, press)
        except Exception:
            log.exception("Slack action %s by %s failed", press.kind, press.slack_user_id)
            outcome = Outcome(decisions.UNAVAILABLE, 503, "the answer could not be recorded now; press again")
        log.info(
            "Slack press %s by %s (Airflow user %s): %s %s",
            press.kind,
            press.slack_user_id,
            press.airflow_user,
            outcome.status,
            outcome.outcome,
        )
        updater = updater_factory(api_conn_id=settings.api_conn_id, response_url_hosts=settings.response_url_hosts)
        # After the answer: Slack wants its 200 within 3 seconds, and the decision is already written.
        background.add_task(_follow_up, updater, payload, outcome)
        return _answer(outcome)

    return router


def parse_press(body: bytes, respondents: dict[str, str]) -> tuple[dict[str, Any], registry.Press]:
    """The interaction payload (form field ``payload``, JSON) and the pressed button. ValueError if not ours."""
    try:
        form = parse_qs(body.decode("utf-8"), max_num_fields=10)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError) as err:
        raise ValueError("not a Slack interaction payload (form field 'payload' with JSON)") from err
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise ValueError("only block_actions payloads (button presses) are handled")
    actions = payload.get("actions") or []
    user = payload.get("user") or {}
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise ValueError("expected exactly one action")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        raise ValueError("payload names no user")
    action = actions[0]
    if not str(action.get("action_id", "")).startswith(buttons.ACTION_PREFIX):
        raise ValueError("not a Toilless button")
    try:
        kind, ref = buttons.decode_value(action.get("value"))
    except buttons.BadButton as err:
        raise ValueError(str(err)) from err
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    press = registry.Press(
        slack_user_id=user["id"],
        slack_user_name=str(user.get("username") or user.get("name") or ""),
        airflow_user=respondents.get(user["id"]),
        kind=kind,
        ref=ref,
        message=message,
    )
    return payload, press


def _follow_up(updater: MessageUpdater, payload: dict[str, Any], outcome: Outcome) -> None:
    try:
        if outcome.settled and outcome.line:
            original = payload.get("message") if isinstance(payload.get("message"), dict) else None
            updater.update(payload, buttons.answered_message(original, line=outcome.line))
        if outcome.outcome != decisions.DECIDED:
            updater.reply(payload, outcome.text)
    except Exception:
        log.exception("Updating the Slack message after a press failed (the decision stands)")


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _answer(outcome: Outcome) -> JSONResponse:
    content: dict[str, Any] = {"outcome": outcome.outcome, "text": outcome.text}
    if outcome.details:
        content["decision"] = outcome.details
    return JSONResponse(content, status_code=outcome.status)


router = create_router()
