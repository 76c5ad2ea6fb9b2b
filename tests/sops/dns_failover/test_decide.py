"""What the answers mean (health.judge) and what to do (decide.decide, decide.after_wait): pure tables."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.sops.dns_failover import decide, health

EXPECTED = {("www.example.test", "A"): ["192.0.2.10"]}


def outcome(transport: str, status: str = "answer", rcode: str = "NOERROR", values=("192.0.2.10",), ms=5.0):
    return {
        "name": "www.example.test",
        "type": "A",
        "transport": transport,
        "status": status,
        "rcode": rcode if status == "answer" else None,
        "values": list(values) if status == "answer" else [],
        "elapsed_ms": ms,
    }


def both(**kwargs: Any) -> list[dict[str, Any]]:
    return [outcome("udp", **kwargs), outcome("tcp", **kwargs)]


@pytest.mark.parametrize(
    ("outcomes", "port_open", "state", "reason"),
    [
        pytest.param(both(), True, health.ANSWERING, "correctly", id="answering"),
        pytest.param(
            [outcome("udp", status="timeout"), *both()],
            True,
            health.ANSWERING,
            "correctly",
            id="one-lost-datagram-is-what-tries-are-for",
        ),
        pytest.param(both(rcode="SERVFAIL"), True, health.FAILING, "SERVFAIL", id="servfail"),
        pytest.param(both(rcode="REFUSED"), True, health.FAILING, "REFUSED", id="refused"),
        pytest.param(both(values=("198.51.100.66",)), True, health.FAILING, "wrong data", id="wrong-data"),
        pytest.param(both(ms=900.0), True, health.FAILING, "slow", id="slow-answers"),
        pytest.param(both(status="timeout"), True, health.FAILING, "no DNS answer came", id="hung-port-open"),
        pytest.param(
            [outcome("udp", status="timeout"), outcome("tcp", status="refused")],
            False,
            health.UNREACHABLE,
            "TCP port is closed",
            id="process-stopped",
        ),
        pytest.param(
            [outcome("udp"), outcome("tcp", status="refused")],
            False,
            health.FAILING,
            "over TCP",
            id="udp-only-is-failing",
        ),
    ],
)
def test_judge(outcomes, port_open: bool, state: str, reason: str) -> None:
    verdict = health.judge("ns1", outcomes, tcp_port_open=port_open, expected=EXPECTED, max_latency_ms=250)
    assert verdict.state == state
    assert reason in " ".join(verdict.reasons)


@pytest.mark.parametrize(
    ("active", "standby", "action"),
    [
        pytest.param(health.ANSWERING, health.ANSWERING, decide.NONE, id="healthy"),
        pytest.param(health.ANSWERING, health.UNREACHABLE, decide.NONE, id="healthy-active-broken-standby"),
        pytest.param(health.UNREACHABLE, health.ANSWERING, decide.FAILOVER_NOW, id="down-fails-over-now"),
        pytest.param(health.FAILING, health.ANSWERING, decide.WAIT, id="failing-waits"),
        pytest.param(health.UNREACHABLE, health.FAILING, decide.PAGE, id="standby-failing-pages"),
        pytest.param(health.UNREACHABLE, health.UNREACHABLE, decide.PAGE, id="both-down-pages"),
        pytest.param(health.FAILING, health.UNREACHABLE, decide.PAGE, id="failing-and-standby-down-pages"),
    ],
)
def test_decide(active: str, standby: str, action: str) -> None:
    decision = decide.decide("ns1", "ns2", {"ns1": {"state": active}, "ns2": {"state": standby}})
    assert decision.action == action


WAITING = decide.decide("ns1", "ns2", {"ns1": {"state": health.FAILING}, "ns2": {"state": health.ANSWERING}}).as_dict()


@pytest.mark.parametrize(
    ("wait", "action"),
    [
        pytest.param({"status": "recovered", "standby_state": health.ANSWERING}, decide.NONE, id="recovered"),
        pytest.param(
            {"status": "timeout", "active_state": health.FAILING, "standby_state": health.ANSWERING},
            decide.FAILOVER_NOW,
            id="still-failing-fails-over",
        ),
        pytest.param(
            {"status": "timeout", "active_state": health.FAILING, "standby_state": health.FAILING},
            decide.PAGE,
            id="standby-broke-meanwhile-pages",
        ),
    ],
)
def test_after_wait(wait: dict[str, Any], action: str) -> None:
    assert decide.after_wait(WAITING, wait).action == action


def test_after_wait_keeps_a_decision_that_did_not_wait() -> None:
    now = decide.decide("ns1", "ns2", {"ns1": {"state": health.UNREACHABLE}, "ns2": {"state": health.ANSWERING}})
    assert decide.after_wait(now.as_dict(), None).action == decide.FAILOVER_NOW
