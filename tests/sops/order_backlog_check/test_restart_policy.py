"""Whether to restart now: verdict, method, allow_restart, once per incident, the gate's answer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.sops.order_backlog_check.scenarios import NOW, STUCK_VERDICT
from toilless.sops.order_backlog_check.restart_policy import decide_restart, restart_already_done
from toilless.sops.order_backlog_check.verdict import (
    OVERLOADED,
    Verdict,
)

# -- restart decisions -----------------------------------------------------------------------------------------


def _decide(**overrides: object) -> object:
    arguments: dict[str, object] = {
        "method": "kubernetes",
        "allow_restart": True,
        "marker": {},
        "policy_allowed": True,
        "policy_reason": "inside business hours",
        "policy_allowed_from": None,
        "now": NOW,
        "memory_hours": 24.0,
    }
    arguments.update(overrides)
    verdict = arguments.pop("verdict", STUCK_VERDICT)
    return decide_restart(verdict, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "act", "fragment"),
    [
        pytest.param({}, True, "restarting", id="allowed"),
        pytest.param({"verdict": Verdict(OVERLOADED, ["x"], None)}, False, "not cured", id="overloaded"),
        pytest.param({"method": "none"}, False, "switched off", id="method-none"),
        pytest.param({"allow_restart": False}, False, "allow_restart", id="param-off"),
        pytest.param(
            {"policy_allowed": False, "policy_reason": "outside business hours"}, False, "outside", id="policy"
        ),
        pytest.param(
            {"marker": {"incident": "stuck:order-5:error-12", "restarted_at": (NOW - timedelta(hours=1)).isoformat()}},
            False,
            "already restarted",
            id="same-incident",
        ),
        pytest.param(
            {"marker": {"incident": "stuck:order-5:error-12", "restarted_at": (NOW - timedelta(hours=30)).isoformat()}},
            True,
            "restarting",
            id="same-incident-long-ago",
        ),
        pytest.param(
            {"marker": {"incident": "stuck:order-4:error-12", "restarted_at": NOW.isoformat()}},
            True,
            "restarting",
            id="other-incident",
        ),
        pytest.param(
            {"marker": {"incident": "stuck:order-5:error-12", "restarted_at": NOW.isoformat(), "state": "failed"}},
            True,
            "restarting",
            id="failed-command-may-retry",
        ),
    ],
)
def test_decide_restart(overrides: dict[str, object], act: bool, fragment: str) -> None:
    decision = _decide(**overrides)
    assert decision.act is act  # type: ignore[attr-defined]
    assert fragment in decision.reason  # type: ignore[attr-defined]


def test_undatable_marker_for_the_incident_counts_as_done() -> None:
    assert restart_already_done({"incident": "k", "restarted_at": "garbage"}, "k", NOW, 24)
