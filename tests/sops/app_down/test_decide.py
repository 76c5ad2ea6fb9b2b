"""App down: is it down, and which recovery (pure, no Airflow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from toilless.sops.app_down import decide

OUTAGE = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
POLICY = decide.RecoveryPolicy(rollout_window=timedelta(hours=2), min_replicas=2, max_replicas=6, scale_step=2)
GOOD, QA = ["shop/web:1.4.2"], ["shop/web:2.0.0-qa"]


def _rev(revision: int, images: list[str], minutes_before: float, cause: str = "") -> dict[str, Any]:
    return {
        "revision": revision,
        "images": images,
        "change_cause": cause,
        "created": (OUTAGE - timedelta(minutes=minutes_before)).isoformat(),
    }


def _pod(ready: bool = True, **flags: Any) -> dict[str, Any]:
    reasons = [
        name
        for name, on in (("CrashLoopBackOff", flags.get("crash_loop")), ("OOMKilled", flags.get("oom_killed")))
        if on
    ]
    return {"ready": ready, "restarts": 3 if reasons else 0, "reasons": reasons, **flags}


def _evidence(revisions: list[dict[str, Any]], pods: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    current = revisions[-1]
    return {
        "revisions": revisions,
        "status": {"revision": current["revision"], "images": current["images"], "desired": 2},
        "pods": pods,
        **extra,
    }


@pytest.mark.parametrize(
    ("evidence", "action", "to_revision", "in_reason"),
    [
        pytest.param(
            _evidence([_rev(1, GOOD, 4000), _rev(2, QA, 20, "deploy QA build")], [_pod(), _pod()]),
            "rollback",
            1,
            "'deploy QA build'",
            id="recent-rollout-rolls-back",
        ),
        pytest.param(
            _evidence(
                [_rev(1, GOOD, 4000), _rev(2, QA, 20), _rev(3, QA, 5)],
                [_pod(), _pod()],
                restarted_at=(OUTAGE - timedelta(minutes=1)).isoformat(),
            ),
            "rollback",
            1,
            "revision 3",
            id="skips-the-restart-revision-with-the-same-image",
        ),
        pytest.param(
            _evidence([_rev(1, QA, 4000), _rev(2, QA, 20)], [_pod(False, crash_loop=True)]),
            "restart",
            None,
            "no earlier image",
            id="recent-rollout-same-image-restarts-crash-loop",
        ),
        pytest.param(
            _evidence([_rev(1, GOOD, 4000)], [_pod(False, crash_loop=True, oom_killed=True), _pod()]),
            "restart",
            None,
            "CrashLoopBackOff",
            id="old-rollout-crash-loop-restarts",
        ),
        pytest.param(
            _evidence([_rev(1, GOOD, 4000)], [_pod(False), _pod(False)]),
            "restart",
            None,
            "not ready",
            id="all-hung-restarts",
        ),
        pytest.param(
            _evidence(
                [_rev(1, GOOD, 4000)],
                [_pod(False, crash_loop=True)],
                restarted_at=(OUTAGE + timedelta(minutes=1)).isoformat(),
            ),
            "escalate_only",
            None,
            "already restarted",
            id="never-restarts-twice-in-an-incident",
        ),
        pytest.param(
            _evidence([_rev(1, GOOD, 4000)], [_pod(), _pod()], usage_pct=97.0),
            "scale",
            None,
            "from 2 to 4",
            id="saturated-scales",
        ),
        pytest.param(
            _evidence([_rev(1, GOOD, 4000)], [_pod(), _pod()], usage_pct=40.0),
            "escalate_only",
            None,
            "nothing safe",
            id="healthy-and-quiet-escalates-only",
        ),
        pytest.param(_evidence([_rev(1, GOOD, 4000)], []), "escalate_only", None, "no pods", id="no-pods"),
    ],
)
def test_decide_recovery(evidence: dict[str, Any], action: str, to_revision: int | None, in_reason: str) -> None:
    recovery = decide.decide_recovery(evidence, outage_started_at=OUTAGE, policy=POLICY)
    assert recovery.action == action
    assert recovery.to_revision == to_revision
    assert in_reason in recovery.reason


def test_rollback_explains_why_a_restart_was_not_chosen() -> None:
    evidence = _evidence(
        [_rev(1, GOOD, 4000), _rev(2, QA, 20), _rev(3, QA, 5)],
        [_pod(), _pod()],
        restarted_at=(OUTAGE - timedelta(minutes=1)).isoformat(),
    )
    recovery = decide.decide_recovery(evidence, outage_started_at=OUTAGE, policy=POLICY)
    assert recovery.to_images == GOOD
    assert any("restart" in refused and "without effect" in refused for refused in recovery.refused)


def test_scale_stays_within_the_maximum() -> None:
    evidence = _evidence([_rev(1, GOOD, 4000)], [_pod()] * 6, usage_pct=99.0)
    evidence["status"]["desired"] = 6
    recovery = decide.decide_recovery(evidence, outage_started_at=OUTAGE, policy=POLICY)
    assert recovery.action == "escalate_only"
    assert "already at 6 replicas" in recovery.refused[-1]


def test_rollback_switched_off_escalates_with_the_target() -> None:
    policy = decide.RecoveryPolicy(rollout_window=timedelta(hours=2), allow_rollback=False)
    evidence = _evidence([_rev(1, GOOD, 4000), _rev(2, QA, 20)], [_pod()])
    recovery = decide.decide_recovery(evidence, outage_started_at=OUTAGE, policy=policy)
    assert recovery.action == "escalate_only"
    assert recovery.to_revision == 1


@pytest.mark.parametrize(
    ("probes", "down"),
    [
        pytest.param([{"url": "a", "kind": "public", "ok": False, "status": 500}] * 3, True, id="never-answers"),
        pytest.param(
            [
                {"url": "a", "kind": "public", "ok": False, "error": "timeout"},
                {"url": "a", "kind": "public", "ok": True},
            ],
            False,
            id="one-answer-is-enough",
        ),
        pytest.param(
            [{"url": "a", "kind": "public", "ok": True}, {"url": "b", "kind": "internal", "ok": False}],
            False,
            id="internal-only-failing-is-not-down",
        ),
        pytest.param([{"url": "b", "kind": "internal", "ok": False}], True, id="only-internal-configured"),
    ],
)
def test_is_down(probes: list[dict[str, Any]], down: bool) -> None:
    assert decide.is_down(decide.endpoint_verdicts(probes)) is down


@pytest.mark.parametrize(
    ("environment", "automatic", "dry_run", "needs"),
    [
        pytest.param("prod", False, False, True, id="prod-asks"),
        pytest.param("prod", True, False, False, id="prod-policy-allows"),
        pytest.param("prod", False, True, False, id="dry-run-never-asks"),
        pytest.param("sandbox", False, False, False, id="non-prod"),
    ],
)
def test_rollback_approval(environment: str, automatic: bool, dry_run: bool, needs: bool) -> None:
    assert (
        decide.needs_approval(
            "rollback", environment=environment, automatic_rollback_in_prod=automatic, dry_run=dry_run
        )
        is needs
    )
    assert (
        decide.needs_approval("restart", environment=environment, automatic_rollback_in_prod=False, dry_run=False)
        is False
    )


@pytest.mark.parametrize(
    ("quantity", "millis"),
    [
        pytest.param("250m", 250.0, id="millis"),
        pytest.param("1", 1000.0, id="cores"),
        pytest.param("1500000n", 1.5, id="nanos"),
        pytest.param("x", None, id="garbage"),
        pytest.param("1e999", None, id="infinite"),
        pytest.param(None, None, id="none"),
    ],
)
def test_cpu_millis(quantity: Any, millis: float | None) -> None:
    assert decide.cpu_millis(quantity) == millis


def test_choose_path() -> None:
    from toilless.sops.app_down import steps

    assert steps.choose_path({"action": "rollback", "needs_approval": True}) == "request_rollback_approval"
    assert steps.choose_path({"action": "rollback", "needs_approval": False}) == "roll_back_deployment"
    assert steps.choose_path({"action": "scale"}) == "scale_deployment"
    assert steps.choose_path({"action": "escalate_only"}) == "report_timeline"


def test_page_text_does_not_escape_the_timeline_twice() -> None:
    from toilless.common import slack
    from toilless.sops.app_down import messages

    line = slack.mrkdwn("decision: *{}*: {}", "rollback", "image a<b & c")
    text = messages.page_text({}, {"title": "App down: shop/web NOT recovered", "lines": [str(line)]})
    assert "a&lt;b &amp; c" in text
    assert "&amp;amp;" not in text
