"""App down: the decision and the report's lines (pure, no Airflow)."""

from __future__ import annotations

import pytest

from toilless.sops.app_down import decide


@pytest.mark.parametrize(
    ("value", "threshold", "allow_action", "act"),
    [
        pytest.param(89.9, 90, True, False, id="below-threshold"),
        pytest.param(90, 90, True, True, id="at-threshold-acts"),
        pytest.param(99, 90, True, True, id="above-threshold-acts"),
        pytest.param(99, 90, False, False, id="action-switched-off-reports-only"),
    ],
)
def test_decide(value: float, threshold: float, allow_action: bool, act: bool) -> None:
    decision = decide.decide(value, threshold=threshold, allow_action=allow_action, target="db-1")
    assert decision.act is act
    assert decision.target == "db-1"
    assert f"{threshold:g}" in decision.reason


def test_report_warns_when_an_action_was_needed_but_not_taken() -> None:
    decision = decide.decide(95, threshold=90, allow_action=True, target="db-1").as_dict()
    refused = {"acted": False, "reason": "dry run: would act on db-1; nothing changed"}
    assert decide.report_status(decision, refused) == "warning"
    assert decide.report_lines(decision, refused, ["Param threshold = 95 (configured 90)"]) == [
        "db-1: 95 reached the threshold 90",
        "not acted: dry run: would act on db-1; nothing changed",
        "Param threshold = 95 (configured 90)",
    ]
    assert decide.report_status(decision, {"acted": True, "reason": "allowed"}) == "ok"
