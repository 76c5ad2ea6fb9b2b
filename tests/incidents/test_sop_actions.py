"""SOPs put each irreversible call and its result on the incident's timeline (incidents.action_result), shown here
on the DNS failover's shutdown and failover with a provider that answers as the real one does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.incidents.conftest import alert
from toilless.common.gate import GatePolicy
from toilless.incidents import events as ev
from toilless.sops.dns_failover import failover


class Provider:
    """A DNS provider whose shutdown does not confirm and whose failover fails when told to."""

    kind = "fake"

    def __init__(self, *, failover_ok: bool = True) -> None:
        self.active = "ns1"
        self.failover_ok = failover_ok

    def active_server(self) -> str:
        return self.active

    def shutdown(self, server: str) -> dict[str, Any]:
        return {"ok": False, "detail": "tool exited 3: password=s3cret not accepted"}

    def failover(self, standby: str, *, force: bool) -> dict[str, Any]:
        if self.failover_ok:
            self.active = standby
        return {"ok": self.failover_ok, "detail": "switched" if self.failover_ok else "refused by the tool"}


@pytest.fixture
def incident(incident_db: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    from toilless.incidents import recorder

    conf_alert = alert(fingerprint="d15f00d")
    monkeypatch.setattr(recorder, "_current_context", lambda: {"params": {"alert": conf_alert}, "run_id": "r1"})
    return ev.incident_of_alert(conf_alert)


def timeline_actions(engine: Any, incident_id: str) -> list[str]:
    from toilless.incidents import store

    return [item["summary"] for item in store.timeline(engine, incident_id) if item["kind"] == ev.ACTION]


def step(function: Any, provider: Provider, markers: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return function(
        provider,
        incident="alert:d15f00d",
        active="ns1",
        standby="ns2",
        policy=GatePolicy(),
        read_marker=lambda: dict(markers),
        write_marker=lambda value: (markers.clear(), markers.update(value)),
        **kwargs,
    )


def test_shutdown_and_failover_results_are_on_the_timeline(incident_db: Any, incident: str) -> None:
    markers: dict[str, Any] = {}
    shut = step(failover.shut_down_once, Provider(), markers)
    assert shut["ok"] is False
    provider = Provider()
    step(failover.fail_over_once, provider, markers, force=True)

    summaries = timeline_actions(incident_db, incident)
    assert summaries[0].startswith("shut down on ns1: not done (tool exited 3: password=")
    assert "s3cret" not in summaries[0]
    assert summaries[1] == "forced failover on ns2: done"


def test_a_failed_failover_is_on_the_timeline_and_still_raises(incident_db: Any, incident: str) -> None:
    with pytest.raises(RuntimeError, match="failover to ns2 failed"):
        step(failover.fail_over_once, Provider(failover_ok=False), {}, force=False)
    assert timeline_actions(incident_db, incident) == ["failover on ns2: not done (refused by the tool)"]
