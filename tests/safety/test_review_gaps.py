"""Gaps a hostile review of the merged safety fixes found (issues 10 and 12): each test is an attack that got through.

* a mountpoint label with ``..`` normalised to ``/`` selected every log set (issue 12 #8's class: an alert whose
  labels point at nothing real must act on nothing);
* ``Authorization: Basic <base64 of user:password>`` reached Slack unmasked (issue 10 #8's class);
* an authenticated sender varying ``receiver`` got one Slack message per refusal (issue 12 #6's class);
* an RDS growth refused by an AWS contract check was wrapped in a retried RuntimeError (issue 10 #10's class);
* the order-backlog outcome report escaped its already escaped lines again (``&amp;lt;`` shown in Slack).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fixtures.slack_checks import markup_problems
from toilless.common.redaction import mask_secrets
from toilless.intake.refusals import RefusalLimiter
from toilless.sops.log_rotation.planning import select_log_sets
from toilless.sops.log_rotation.settings import LogSet

REPO = Path(__file__).resolve().parents[2]


# -- issue 12 #8: a traversal in a mountpoint label must not widen the action to every log set ---------------------
LOG_SETS = {
    "app": LogSet(name="app", root="/var/log/app", globs=("*.log",)),
    "orders": LogSet(name="orders", root="/srv/orders/logs", globs=("*.log",)),
}


@pytest.mark.parametrize(
    "mountpoint",
    [
        pytest.param("/..", id="slash-dotdot"),
        pytest.param("/../..", id="dotdot-twice"),
        pytest.param("/var/log/app/../../..", id="climbs-to-root"),
        pytest.param("/var/log/app/..", id="climbs-one"),
        pytest.param("/srv/./orders", id="dot-segment"),
    ],
)
def test_mountpoint_label_with_dot_segments_selects_no_log_set(mountpoint: str) -> None:
    alert = {"alertname": "LogMountLowStorage", "labels": {"mountpoint": mountpoint}}

    chosen, why = select_log_sets(LOG_SETS, None, alert)

    assert chosen == []
    assert "no matching target" in why


def test_real_mountpoints_still_select_their_log_sets() -> None:
    def names(mountpoint: str) -> list[str]:
        chosen, _ = select_log_sets(LOG_SETS, None, {"alertname": "x", "labels": {"mountpoint": mountpoint}})
        return [item.name for item in chosen]

    assert names("/") == ["app", "orders"]
    assert names("/var") == ["app"]
    assert names("/srv/orders/") == ["orders"]


# -- issue 10 #8: HTTP credentials in error text -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        pytest.param("401 for request with Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", id="basic-user-pass"),
        pytest.param("headers={'Authorization': 'Basic b3JkZXJzOnB3'}", "b3JkZXJzOnB3", id="basic-in-dict"),
        pytest.param("Authorization: Bearer abc.def.ghi", "abc.def.ghi", id="short-bearer"),
        pytest.param("authorization=token ghsecret", "ghsecret", id="github-token-scheme"),
    ],
)
def test_authorization_header_credentials_are_masked_whatever_their_length(text: str, secret: str) -> None:
    masked = mask_secrets(text)

    assert secret not in masked
    assert "***" in masked


def test_prose_about_basic_authentication_stays_readable() -> None:
    text = "basic information: the server requires Basic authentication"
    assert mask_secrets(text) == text


# -- issue 12 #6: refusals are bounded across receivers, not only per receiver -------------------------------------
def test_refusals_from_many_receivers_post_a_bounded_number_of_messages() -> None:
    limiter = RefusalLimiter(interval=600)

    posted = [limiter.admit(f"receiver-{index}", float(index)) for index in range(60)]

    admitted = [count for count in posted if count is not None]
    assert 1 <= len(admitted) <= 5
    # After the interval the next message says how many were not posted.
    assert limiter.admit("receiver-late", 700.0) == 60 - len(admitted)


def test_one_receiver_is_still_posted_once_per_interval() -> None:
    limiter = RefusalLimiter(interval=600)
    assert limiter.admit("am", 0.0) == 0
    assert limiter.admit("am", 10.0) is None
    assert limiter.admit("am", 601.0) == 1


# -- issue 10 #10: a contract refusal while growing is invalid input: failed at once, never retried ----------------
@contextmanager
def _task_context(dag: Any, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from airflow.sdk.execution_time.context import set_current_context

    now = datetime.now(UTC)
    context = {
        "params": params,
        "dag": dag,
        "run_id": "manual__review",
        "dag_run": SimpleNamespace(run_after=now, start_date=now, logical_date=None, conf={}),
        "ti": SimpleNamespace(map_index=-1, xcom_pull=lambda **_: None),
    }
    with set_current_context(context):  # type: ignore[arg-type]
        yield context


def _grow_plan() -> tuple[dict[str, Any], dict[str, Any]]:
    decision = {
        "instance_id": "orders-db",
        "action": "grow_now",
        "allocated_gib": 100,
        "target_gib": 130,
        "new_max_allocated_gib": None,
    }
    plan = {"dry_run": False, "to_grow_now": ["orders-db"], "to_approve": [], "decisions": [decision]}
    return plan, {"aws_conn_id": None, "region": "eu-central-1"}


def test_growth_refused_by_an_aws_contract_check_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowFailException

    from toilless.common.aws_contracts import AwsContractError
    from toilless.sops.rds_storage_guard import expansion

    def refuse(self: Any, instance_id: str, **_: Any) -> dict[str, Any]:
        raise AwsContractError("AllocatedStorage 70000 GiB is outside 1-65536 GiB (gp3)")

    monkeypatch.setattr(expansion, "grow_storage_once", refuse)
    bag = DagBag(dag_folder=str(REPO / "dags" / "rds_storage_guard.py"))
    dag = bag.dags["rds_storage_guard"]
    plan, measured = _grow_plan()
    with _task_context(dag, {"dry_run": False}) as context:
        with pytest.raises(AirflowFailException, match="not retried") as caught:
            dag.get_task("expand_allocated_storage").python_callable(plan, measured, **context)
    assert "70000 GiB" in str(caught.value)


def test_growth_failing_for_a_transient_reason_is_still_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from toilless.sops.rds_storage_guard import expansion

    def throttled(self: Any, instance_id: str, **_: Any) -> dict[str, Any]:
        raise ConnectionError("Throttling: Rate exceeded")

    monkeypatch.setattr(expansion, "grow_storage_once", throttled)
    bag = DagBag(dag_folder=str(REPO / "dags" / "rds_storage_guard.py"))
    dag = bag.dags["rds_storage_guard"]
    plan, measured = _grow_plan()
    with _task_context(dag, {"dry_run": False}) as context:
        with pytest.raises(RuntimeError, match="Throttling"):
            dag.get_task("expand_allocated_storage").python_callable(plan, measured, **context)


# -- order backlog outcome report: escaped once, not twice -----------------------------------------------------------
def test_outcome_report_lines_are_escaped_exactly_once() -> None:
    from toilless.common.reporting import render_report
    from toilless.sops.order_backlog_check.messages import outcome_report

    diagnosis = {
        "verdict": {
            "verdict": "stuck",
            "reasons": ["order <A&B> repeats Error #7 <!channel>"],
            "restartable": True,
            "incident_key": "stuck:<A&B>:7",
            "stuck_order": "<A&B>",
        }
    }
    settings = {"verify": {"timeout_minutes": 10}, "thresholds": {"outstanding_orders": 10}, "dry_run": False}
    outcome = outcome_report(diagnosis, {"outstanding": 50}, {"reason": "gate said <no>"}, None, settings)

    message = render_report(title=outcome["title"], lines=outcome["lines"], status=outcome["status"])

    body = "\n".join(block["text"]["text"] for block in message["blocks"] if block["type"] == "section")
    assert "order &lt;A&amp;B&gt; repeats" in body
    assert "&amp;lt;" not in body
    assert "&amp;amp;" not in body
    assert markup_problems(message, set()) == []


# -- the action gate's history on the target is outside text: an edited tag or annotation must not break the gate --
@pytest.mark.parametrize(
    "history",
    [
        pytest.param("\u00b2", id="superscript-digit"),
        pytest.param("9" * 20, id="beyond-time_t"),
        pytest.param("99999999999999", id="year-out-of-range"),
        pytest.param("\u0661\u0662\u0663", id="arabic-indic-digits"),
    ],
)
def test_unreadable_history_entries_are_skipped_not_raised(history: str) -> None:
    from toilless.common import gate

    moments = gate.decode_history(f"1700000000 {history} 1700000060")

    assert [int(moment.timestamp()) for moment in moments] == [1700000000, 1700000060]


def test_restart_gate_decides_with_an_edited_history_annotation() -> None:
    from toilless.sops.order_backlog_check import restart_policy

    history = restart_policy.restart_history({"history": "9" * 20, "restarted_at": "garbage"}, incident_key="stuck:7")

    assert history.recent_actions == ()
    assert history.last_action_at is None


# -- a restart command that can never run is a configuration error found before anything is read or changed -------
@pytest.mark.parametrize(
    "command",
    [
        pytest.param([], id="empty"),
        pytest.param("systemctl restart orders", id="a-shell-string"),
        pytest.param(["systemctl", ""], id="empty-argument"),
        pytest.param(["systemctl", 3], id="not-a-string"),
    ],
)
def test_unusable_restart_command_fails_when_settings_are_resolved(command: Any) -> None:
    from toilless.common.config import read_defaults
    from toilless.sops.order_backlog_check.settings import SettingsError, resolve_settings

    config = read_defaults("order_backlog_check")
    config["restart"] = {**config["restart"], "method": "command", "command": command}

    with pytest.raises(SettingsError, match=r"restart\.command"):
        resolve_settings(config, read_defaults("toilless"), {})


# -- a marker dated in the future records no request: it must not hold the guard in cool-down while the disk fills --
def test_marker_dated_in_the_future_does_not_start_a_cooldown() -> None:
    from datetime import timedelta

    from tests.safety.rds_storage_guard_fake_rds import FakeInstance, FakeRds
    from toilless.hooks.rds import RdsHook
    from toilless.sops.rds_storage_guard import expansion, markers

    now = datetime.now(UTC).replace(microsecond=0)
    future = markers.marker_value(now + timedelta(days=365 * 900), "manual__x", 100, 130)
    fake = FakeRds(FakeInstance("orders-db", tags={markers.MARKER_TAG: future}))
    hook = RdsHook(aws_conn_id=None, region_name="eu-central-1")
    hook.__dict__["rds"] = fake

    last = expansion.last_storage_change(
        hook, fake.instances["orders-db"].describe(), now=now, lookback=timedelta(hours=7)
    )

    assert last is None


def test_marker_within_clock_skew_still_counts() -> None:
    from datetime import timedelta

    from tests.safety.rds_storage_guard_fake_rds import FakeInstance, FakeRds
    from toilless.hooks.rds import RdsHook
    from toilless.sops.rds_storage_guard import expansion, markers

    now = datetime.now(UTC).replace(microsecond=0)
    marker = markers.marker_value(now + timedelta(seconds=30), "manual__x", 100, 130)
    fake = FakeRds(FakeInstance("orders-db", tags={markers.MARKER_TAG: marker}))
    hook = RdsHook(aws_conn_id=None, region_name="eu-central-1")
    hook.__dict__["rds"] = fake

    last = expansion.last_storage_change(
        hook, fake.instances["orders-db"].describe(), now=now, lookback=timedelta(hours=7)
    )

    assert last == now + timedelta(seconds=30)
