"""Shutdown and failover exactly once per incident, against the real dnsTool stand-in and dnsmasq pair.

A crash between the shutdown and the failover, or during the failover call, followed by a retry: the tool is asked
to shut down once and to fail over once.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.dns_pair import DnsPair
from toilless.common.gate import GatePolicy
from toilless.sops.dns_failover import failover
from toilless.sops.dns_failover.providers import CommandProvider

SHUTDOWN = ["-a", "shutdown", "-s", "ns1"]
FAILOVER = ["-a", "failover", "-s", "ns2"]


class Markers:
    """The run-state store, in memory."""

    def __init__(self) -> None:
        self.value: dict[str, Any] = {}
        self.writes = 0

    def read(self) -> dict[str, Any]:
        return dict(self.value)

    def write(self, marker: dict[str, Any]) -> None:
        self.writes += 1
        self.value = dict(marker)


class DiesAfterFailoverCall:
    """The provider, but the worker dies right after the tool made the failover (the answer is lost)."""

    def __init__(self, provider: CommandProvider) -> None:
        self.provider = provider
        self.kind = provider.kind

    def active_server(self) -> str:
        return self.provider.active_server()

    def shutdown(self, server: str) -> dict[str, Any]:
        return self.provider.shutdown(server)

    def failover(self, standby: str, *, force: bool) -> dict[str, Any]:
        self.provider.failover(standby, force=force)
        raise ConnectionError("worker lost after the failover call")


@pytest.fixture
def provider(dns_pair: DnsPair) -> CommandProvider:
    settings = {"command": {"argv": [str(dns_pair.tool)], "timeout_seconds": 20}, "servers": {"ns1": {}, "ns2": {}}}
    return CommandProvider(settings)


def act(step: Any, provider: Any, markers: Markers, **kwargs: Any) -> dict[str, Any]:
    return step(
        provider,
        incident="alert:abc:2026-01-01T00:00:00Z",
        active="ns1",
        standby="ns2",
        policy=GatePolicy(),
        read_marker=markers.read,
        write_marker=markers.write,
        **kwargs,
    )


def actions(pair: DnsPair) -> list[list[str]]:
    return [call for call in pair.calls() if call[:1] == ["-a"]]


def test_retry_after_a_crash_between_shutdown_and_failover_acts_once(dns_pair: DnsPair, provider) -> None:
    markers = Markers()
    first = act(failover.shut_down_once, provider, markers)
    assert (first["acted"], first["ok"]) == (True, True)
    # The worker dies here: no failover call. The retry runs both steps again.
    again = act(failover.shut_down_once, provider, markers)
    assert (again["acted"], again["outcome"]) == (False, "already_tried")
    assert again["ok"] is True
    moved = act(failover.fail_over_once, provider, markers, force=not again["ok"])
    assert (moved["acted"], moved["outcome"]) == (True, "done")
    repeat = act(failover.fail_over_once, provider, markers, force=False)
    assert (repeat["acted"], repeat["outcome"]) == (False, "already_active")
    assert actions(dns_pair) == [SHUTDOWN, FAILOVER]
    assert dns_pair.active == "ns2"
    assert markers.value["failover"]["state"] == "done"


def test_retry_after_a_crash_during_the_failover_call_does_not_fail_over_again(dns_pair: DnsPair, provider) -> None:
    markers = Markers()
    act(failover.shut_down_once, provider, markers)
    with pytest.raises(ConnectionError):
        act(failover.fail_over_once, DiesAfterFailoverCall(provider), markers, force=False)
    assert markers.value["failover"]["state"] == "started"
    retried = act(failover.fail_over_once, provider, markers, force=False)
    assert retried["outcome"] == "already_active"
    assert actions(dns_pair) == [SHUTDOWN, FAILOVER]
    # The lost answer's failover is recorded now, so the cool-down and the breaker count it.
    assert markers.value["failover"]["state"] == "done"
    assert markers.value["history"]


def test_a_shutdown_that_crashed_mid_call_is_not_repeated_and_forces_the_failover(dns_pair: DnsPair, provider) -> None:
    markers = Markers()
    markers.value = {"incident": "alert:abc:2026-01-01T00:00:00Z", "shutdown": {"state": "started", "at": "x"}}
    again = act(failover.shut_down_once, provider, markers)
    assert (again["acted"], again["ok"], again["outcome"]) == (False, False, "already_tried")
    moved = act(failover.fail_over_once, provider, markers, force=not again["ok"])
    assert moved["forced"] is True
    assert actions(dns_pair) == [[*FAILOVER, "-f"]]


def test_a_failed_failover_raises_and_the_retry_tries_again(dns_pair: DnsPair, provider) -> None:
    markers = Markers()
    act(failover.shut_down_once, provider, markers)
    dns_pair.fault("failover", "fail")
    with pytest.raises(RuntimeError, match="failover to ns2 failed"):
        act(failover.fail_over_once, provider, markers, force=False)
    assert dns_pair.active == "ns1"
    dns_pair.fault("failover", None)
    moved = act(failover.fail_over_once, provider, markers, force=False)
    assert moved["outcome"] == "done"
    assert dns_pair.active == "ns2"


def test_dry_run_calls_no_action(dns_pair: DnsPair, provider) -> None:
    markers = Markers()
    result = failover.shut_down_once(
        provider,
        incident="i",
        active="ns1",
        standby="ns2",
        policy=GatePolicy(dry_run=True),
        read_marker=markers.read,
        write_marker=markers.write,
    )
    assert result["outcome"] == "dry_run"
    assert actions(dns_pair) == []
    assert markers.writes == 0


def test_a_new_incident_inside_the_cool_down_is_refused(dns_pair: DnsPair, provider) -> None:
    from datetime import timedelta

    markers = Markers()
    act(failover.shut_down_once, provider, markers)
    act(failover.fail_over_once, provider, markers, force=False)
    dns_pair.reset()  # ns1 active again (networking restored it); a new incident right away
    refused = failover.shut_down_once(
        provider,
        incident="alert:other:2026-01-01T01:00:00Z",
        active="ns1",
        standby="ns2",
        policy=GatePolicy(cooldown=timedelta(minutes=30)),
        read_marker=markers.read,
        write_marker=markers.write,
    )
    assert refused["outcome"] == "gate_refused"
    assert refused["gate"]["check"] == "cooldown"
    assert actions(dns_pair) == []
