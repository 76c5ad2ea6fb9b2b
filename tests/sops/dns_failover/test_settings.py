"""A run's settings: Params only tighten; every bad input is refused with a clear message before anything runs."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.common.config import LooseningParamError, read_defaults
from toilless.sops.dns_failover.settings import resolve
from toilless.sops.dns_failover.validation import DnsInputError


def configured(**overrides: Any) -> dict[str, Any]:
    settings = read_defaults("dns_failover")
    settings["command"] = {"argv": ["/bin/true"], "timeout_seconds": 5}
    settings.update(overrides)
    return settings


def test_defaults_resolve() -> None:
    settings = resolve(configured(), {})
    assert settings["wait_minutes"] == 5
    assert settings["provider"] == "command"
    assert settings["dry_run"] is False


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"wait_minutes": 1}, LooseningParamError, id="shorter-wait-loosens"),
        pytest.param({"allow_failover": True}, None, id="allow-when-allowed"),
    ],
)
def test_params_only_tighten(params: dict[str, Any], error: type[Exception] | None) -> None:
    if error:
        with pytest.raises(error, match="wait_minutes"):
            resolve(configured(), params)
    else:
        assert resolve(configured(), params)["allow_failover"] is True


def test_allow_failover_cannot_be_switched_on_by_a_param() -> None:
    with pytest.raises(LooseningParamError):
        resolve(configured(allow_failover=False), {"allow_failover": True})
    assert resolve(configured(), {"wait_minutes": 10, "allow_failover": False})["wait_minutes"] == 10


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"provider": "bind"}, "one of command, route53", id="unknown-provider"),
        pytest.param({"command": {"argv": ["/nonexistent/dnsTool"]}}, "not found", id="missing-tool"),
        pytest.param({"probe": {"tries": 0}}, "1-10", id="no-tries"),
        pytest.param({"wait_minutes": -1}, "0-120", id="negative-wait"),
        pytest.param(
            {"provider": "route53", "route53": {"hosted_zone_id": "z-lower", "record_name": "dns.test"}},
            "hosted zone id",
            id="bad-zone-id",
        ),
        pytest.param(
            {"provider": "route53", "route53": {"hosted_zone_id": "Z1", "record_name": "bad..name"}},
            "empty label",
            id="bad-record-name",
        ),
        pytest.param(
            {
                "provider": "route53",
                "route53": {"hosted_zone_id": "Z1", "record_name": "dns.test"},
                "servers": {"ns1": {"address": "ns1.example.net"}, "ns2": {"address": "10.0.0.2"}},
            },
            "route53 records hold IP addresses",
            id="route53-host-name",
        ),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DnsInputError, match=message):
        resolve(configured(**overrides), {})
