"""AlertmanagerHook against a real Alertmanager (API v2): create, list, find again, expire early."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from toilless.hooks.alertmanager import AlertmanagerHook
from toilless.sops.triage_alert import silences

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(alertmanager_server: Any, set_connection: Callable[[str, dict[str, Any]], None]) -> AlertmanagerHook:
    set_connection("alertmanager_default", {"conn_type": "http", "host": alertmanager_server.url})
    return AlertmanagerHook()


def request_for(service: str, minutes: float = 30) -> silences.SilenceRequest:
    return silences.build_silence(
        {"alertname": "HookTest", "service": service},
        minutes=minutes,
        max_minutes=60,
        created_by="toilless",
        reason="hook test",
        incident=f"incident-{service}",
        now=datetime.now(UTC),
    )


def test_create_list_and_expire_a_silence(hook: AlertmanagerHook, alertmanager_server: Any) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    request = request_for(service)
    silence_id = hook.create_silence(request.body())

    [held] = [s for s in alertmanager_server.silences() if s["id"] == silence_id]
    assert held["status"]["state"] == "active"
    assert held["createdBy"] == "toilless"
    listed = hook.list_silences(filters=[silences.filter_matcher("service", service)])
    assert [s["id"] for s in listed] == [silence_id]
    assert silences.same_silence(listed[0], request, f"incident-{service}")

    hook.expire_silence(silence_id)
    assert hook.get_silence(silence_id)["status"]["state"] == "expired"


def test_a_body_breaking_the_contract_is_not_sent(hook: AlertmanagerHook, alertmanager_server: Any) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    body = request_for(service).body()
    body["matchers"] = [{"name": "service", "value": service, "isRegex": True, "isEqual": True}]
    with pytest.raises(silences.SilenceError, match="isRegex false"):
        hook.create_silence(body)
    assert not [s for s in alertmanager_server.silences() if any(m["value"] == service for m in s["matchers"])]


def test_expire_refuses_an_id_that_is_not_a_uuid(hook: AlertmanagerHook) -> None:
    with pytest.raises(silences.SilenceError, match="not an Alertmanager silence id"):
        hook.expire_silence("../../api/v2/status")
