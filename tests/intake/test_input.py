"""The intake under hostile or broken input (issue 12): every permanent problem is a 4xx decided before anything
starts, every Slack message it writes is escaped and within Slack's limits, and a DAG that cannot run an alert is
said for that alert alone."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.alert_intake import TARGET_DAG, IntakeHarness, make_alert, make_payload
from tests.fixtures.slack_checks import limit_problems, markup_problems

pytestmark = pytest.mark.integration

PROD_DISK = {"instance": "db-1", "environment": "prod", "severity": "critical", "service": "orders"}
OTHER_DAG = "test.failing_example"
#: Hosts the intake may link to in these tests: include/config/alert_intake.yaml's link_hosts and the Airflow UI.
ALLOWED_HOSTS = {"grafana.example.com", "kibana.example.com", "127.0.0.1"}


def _assert_nothing_started(intake: IntakeHarness) -> None:
    assert intake.runs() == []
    intake.deliver()
    assert not any("runbook started" in m["text"] for m in intake.slack_sink.messages())


def _outbox_messages() -> list[dict[str, Any]]:
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from toilless.intake.store import outbox

    with create_session() as session:
        return [json.loads(row) for row in session.execute(select(outbox.c.message_json)).scalars()]


# -- 1, 2: bodies that can never be read are 400, never 500/503 ---------------------------------------------------
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"[" * 3000 + b"]" * 3000, "nests deeper", id="deep-nesting"),
        pytest.param(b'{"version": "4", "truncatedAlerts": ' + b"9" * 5000 + b"}", "digits", id="5000-digit-number"),
        pytest.param(b'{"version": "4", "truncatedAlerts": 1e999}', "out of range", id="float-overflow"),
        pytest.param(b'{"version": "4", "truncatedAlerts": NaN}', "NaN", id="nan"),
    ],
)
def test_unreadable_json_is_400(intake: IntakeHarness, body: bytes, reason: str) -> None:
    response = intake.post_decided(body)

    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]
    _assert_nothing_started(intake)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("label", id="label-value"),
        pytest.param("label-name", id="label-name"),
        pytest.param("annotation", id="annotation"),
        pytest.param("receiver", id="receiver"),
    ],
)
def test_lone_surrogate_or_nul_is_4xx_never_503(intake: IntakeHarness, where: str) -> None:
    alert = make_alert(**PROD_DISK)
    payload = make_payload(alert)
    for bad in ("\ud800", "x\x00y"):
        if where == "label":
            alert["labels"]["instance"] = bad
        elif where == "label-name":
            alert["labels"][bad] = "v"
        elif where == "annotation":
            alert["annotations"]["summary"] = bad
        else:
            payload["receiver"] = bad

        response = intake.post_decided(payload)

        assert 400 <= response.status_code < 500, response.text
    _assert_nothing_started(intake)


# -- 3: an over-long target is refused before anything of the payload starts ----------------------------------------
def test_over_long_target_refuses_the_payload_before_any_alert_starts(intake: IntakeHarness) -> None:
    good = make_alert(**PROD_DISK)
    # Each label is within its limit (1,024), but the target "instance=<1,000 characters>" exceeds its column.
    long_target = make_alert(fingerprint="bbbbbbbbbbbbbbbb", **{**PROD_DISK, "instance": "i" * 1000})

    response = intake.post_decided(make_payload(good, long_target))

    assert response.status_code == 422, response.text
    assert any("target is 1,009 characters" in error for error in response.json()["errors"])
    _assert_nothing_started(intake)


# -- 4: outside text is escaped, links only to configured hosts ---------------------------------------------------------
def test_alert_text_cannot_inject_markup_into_the_ack(intake: IntakeHarness) -> None:
    alert = make_alert("Hostile<!here>", environment="staging", instance="web`<!channel>`x")
    alert["annotations"] = {
        "summary": "<!channel> <https://evil.example|click here> @here",
        "runbook": "see https://evil.example/x and `code` ``` block",
    }
    alert["generatorURL"] = "javascript:alert(1)"
    payload = make_payload(alert)
    payload["externalURL"] = "javascript:alert(1)"

    response = intake.post_decided(payload)

    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "no_runbook"
    intake.deliver()
    [message] = intake.slack_sink.messages()
    assert markup_problems(message, ALLOWED_HOSTS) == []
    text = message["text"]
    assert "&lt;!channel&gt;" in text  # shown, inert
    assert "javascript:alert(1)" in text  # shown as text, never as a link
    assert "<javascript" not in json.dumps(message)
    assert "`instance=web\u02cb&lt;!channel&gt;\u02cbx`" in text  # backticks cannot close the code span


# -- 5: limits on input, and the ack within Slack's limits saying what was cut -------------------------------------
@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"huge": "x" * 900_000}, "900,000 characters", id="900KB-label"),
        pytest.param({f"l{index}": "v" for index in range(20_000)}, "20,005 labels", id="20000-labels"),
    ],
)
def test_input_over_the_limits_is_refused_with_a_reason(
    intake: IntakeHarness, labels: dict[str, str], expected: str
) -> None:
    alert = make_alert(**PROD_DISK)
    alert["labels"].update(labels)

    response = intake.post_decided(make_payload(alert))

    assert response.status_code in (413, 422), response.text
    errors = response.json()["errors"]
    assert any(expected in error for error in errors), errors
    assert len(errors) <= 52
    _assert_nothing_started(intake)
    for message in intake.slack_sink.messages():
        assert limit_problems(message) == []


def test_big_alert_within_the_limits_is_acked_within_slacks_limits_saying_what_was_cut(
    intake: IntakeHarness,
) -> None:
    alert = make_alert("BigButValid", environment="staging")
    alert["labels"].update({f"label_{index:02d}": "v" * 1000 for index in range(60)})
    alert["annotations"] = {f"note_{index:02d}": "a" * 8000 for index in range(30)}

    response = intake.post_decided(make_payload(alert))

    assert response.status_code == 200, response.text
    [queued] = _outbox_messages()
    assert limit_problems(queued) == []  # built within the limits, not only cut on the way out
    intake.deliver()
    [message] = intake.slack_sink.messages()
    assert limit_problems(message) == []
    assert len(json.dumps(message)) < 60_000
    assert "42 more label(s) cut" in message["text"]
    assert "20 more annotation(s) cut" in message["text"]


# -- 6: refusals are rate-limited per receiver and summarised ------------------------------------------------------
def test_refusals_post_one_message_per_receiver_per_ten_minutes_with_a_count(intake: IntakeHarness) -> None:
    bad = make_payload({**make_alert(**PROD_DISK), "labels": {"instance": "db-1"}})  # no alertname: 422

    for _ in range(30):
        assert intake.post_decided(bad).status_code == 422
    other_receiver = {**bad, "receiver": "other"}
    assert intake.post_decided(other_receiver).status_code == 422
    intake.deliver()

    refused = [m for m in intake.slack_sink.messages() if "refused" in m["text"]]
    assert len(refused) == 2  # one per receiver, not 31
    intake.now += timedelta(minutes=11)
    assert intake.post_decided(bad).status_code == 422
    intake.deliver()
    refused = [m for m in intake.slack_sink.messages() if "refused" in m["text"]]
    assert len(refused) == 3
    assert "29 more refusal(s)" in refused[-1]["text"]


# -- 7: timestamps -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "starts_at",
    [
        pytest.param(12345, id="integer"),
        pytest.param("12345", id="number-string"),
        pytest.param("0001-01-01T00:00:00Z", id="year-1"),
        pytest.param("9999-12-31T23:59:59Z", id="year-9999"),
        pytest.param("2999-01-01T00:00:00Z", id="far-future"),
        pytest.param("2026-11-24T11:58:00", id="no-timezone"),
    ],
)
def test_implausible_startsAt_is_422_and_starts_nothing(intake: IntakeHarness, starts_at: Any) -> None:
    alert = {**make_alert(**PROD_DISK), "startsAt": starts_at}

    response = intake.post_decided(make_payload(alert))

    assert response.status_code == 422, response.text
    assert any("startsAt" in error for error in response.json()["errors"])
    _assert_nothing_started(intake)


@pytest.mark.parametrize("ends_at", ["9999-12-31T23:59:59Z", "2999-01-01T00:00:00Z", 12345])
def test_endsAt_zero_time_is_accepted_but_an_implausible_one_is_not(intake: IntakeHarness, ends_at: Any) -> None:
    broken = {**make_alert(**PROD_DISK), "endsAt": ends_at}

    assert intake.post_decided(make_payload(broken)).status_code == 422
    assert intake.post_decided(make_payload(make_alert(**PROD_DISK))).status_code == 200  # endsAt 0001-01-01: not ended


# -- 9: a resolved notification before its firing one -------------------------------------------------------------
def test_resolved_before_firing_is_remembered_so_the_late_firing_starts_nothing(intake: IntakeHarness) -> None:
    resolved = intake.post_decided(make_payload(make_alert(status="resolved", **PROD_DISK)))
    late_firing = intake.post_decided(make_payload(make_alert(**PROD_DISK)))

    assert resolved.json()["results"][0]["status"] == "resolved"
    assert late_firing.status_code == 200
    result = late_firing.json()["results"][0]
    assert result["status"] == "duplicate"
    assert "resolved before" in result["detail"]
    _assert_nothing_started(intake)
    # A new firing of the same alert (new startsAt) is a new alert and starts.
    again = make_alert(starts_at="2026-11-24T11:59:30Z", **PROD_DISK)
    assert intake.post_decided(make_payload(again)).json()["results"][0]["status"] == "started"


# -- 15: paused and stale DAGs --------------------------------------------------------------------------------------
@pytest.fixture
def two_dag_routes(intake: IntakeHarness, tmp_path: Path) -> Iterator[IntakeHarness]:
    """Routes to the target DAG and to a second fixture DAG, whose paused/stale flags the test sets."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete, update

    from tests.fixtures.alert_intake import TEST_ROUTES
    from toilless.intake.service import SettingsProvider

    routes = tmp_path / "routes.yaml"
    routes.write_text(
        TEST_ROUTES.read_text()
        + f"""
  - name: other-dag
    dag_id: {OTHER_DAG}
    matchers: ['alertname="TestOtherDag"']
    target: [instance]
"""
    )
    intake.service.provider = SettingsProvider(ttl=0, routes_path=routes)
    with create_session() as session:
        original = session.execute(DagModel.__table__.select().where(DagModel.dag_id == OTHER_DAG)).first()
        # This test's precondition: no run of the fixture DAG yet (other tests of the session run it by hand).
        session.execute(delete(DagRun).where(DagRun.dag_id == OTHER_DAG))
    yield intake
    with create_session() as session:
        session.execute(
            update(DagModel)
            .where(DagModel.dag_id == OTHER_DAG)
            .values(is_paused=original.is_paused, is_stale=original.is_stale)
        )
        session.execute(delete(DagRun).where(DagRun.dag_id == OTHER_DAG))


def _set_other_dag(**values: bool) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == OTHER_DAG).values(**values))


def test_alert_for_a_paused_dag_is_acked_and_holds_nothing_while_the_others_start(
    two_dag_routes: IntakeHarness,
) -> None:
    intake = two_dag_routes
    _set_other_dag(is_paused=True, is_stale=False)
    blocked = make_alert("TestOtherDag", fingerprint="0000000000000001", instance="o-1", environment="staging")

    response = intake.post_decided(make_payload(blocked, make_alert(**PROD_DISK)))

    assert response.status_code == 200, response.text
    assert response.json()["counts"] == {"paused": 1, "started": 1}
    assert intake.runs(OTHER_DAG) == []  # no queued run holding the target until an unpause
    assert len(intake.runs(TARGET_DAG)) == 1
    assert intake.post_decided(make_payload(blocked)).json()["results"][0]["status"] == "duplicate"
    intake.deliver()
    paused = [m for m in intake.slack_sink.messages() if "runbook paused: nothing will run" in m["text"]]
    assert len(paused) == 1
    # Unpaused, the next notification of the same alert starts it, once.
    _set_other_dag(is_paused=False)
    assert intake.post_decided(make_payload(blocked)).json()["results"][0]["status"] == "started"
    assert len(intake.runs(OTHER_DAG)) == 1


def test_alert_for_a_removed_dag_is_acked_missing_and_the_others_proceed(two_dag_routes: IntakeHarness) -> None:
    intake = two_dag_routes
    _set_other_dag(is_paused=False, is_stale=True)
    blocked = make_alert("TestOtherDag", fingerprint="0000000000000002", instance="o-2", environment="staging")

    first = intake.post_decided(make_payload(make_alert(**PROD_DISK), blocked))
    retry = intake.post_decided(make_payload(make_alert(**PROD_DISK), blocked))

    assert first.status_code == 200, first.text  # not 503: a retry could never succeed
    assert first.json()["counts"] == {"started": 1, "missing": 1}
    assert retry.json()["counts"] == {"duplicate": 2}
    assert intake.runs(OTHER_DAG) == []
    assert len(intake.runs(TARGET_DAG)) == 1
    intake.deliver()
    missing = [m for m in intake.slack_sink.messages() if "runbook missing" in m["text"]]
    assert len(missing) == 1


# -- 15: a DAG Airflow has never known ------------------------------------------------------------------------------
UNKNOWN_DAG_WHY = "is not known to Airflow (check the route / the DAG file)"


def test_alert_for_a_dag_airflow_never_knew_is_acked_missing_once_and_the_others_start(
    intake: IntakeHarness,
) -> None:
    # tests/intake/data/alert_routes_test.yaml routes TestMissingDag to test.no_such_dag (a typo, say).
    unknown = make_alert("TestMissingDag", fingerprint="0000000000000003", instance="u-1", environment="staging")

    first = intake.post_decided(make_payload(unknown, make_alert(**PROD_DISK)))
    retry = intake.post_decided(make_payload(unknown, make_alert(**PROD_DISK)))

    # 200, not 503: a 5xx would make Alertmanager retry the valid alert with it, forever; a 4xx would drop it.
    assert first.status_code == 200, first.text
    assert first.json()["counts"] == {"missing": 1, "started": 1}
    [missing] = [result for result in first.json()["results"] if result["status"] == "missing"]
    assert missing["dag_id"] == "test.no_such_dag"
    assert missing["detail"] == f"runbook missing: test.no_such_dag {UNKNOWN_DAG_WHY}"
    assert retry.status_code == 200, retry.text
    assert retry.json()["counts"] == {"duplicate": 2}
    assert len(intake.runs(TARGET_DAG)) == 1
    intake.deliver()
    texts = [m["text"] for m in intake.slack_sink.messages()]
    acks = [text for text in texts if "runbook missing" in text]
    assert len(acks) == 1, texts  # once per alert, whatever the retries
    assert f"test.no_such_dag {UNKNOWN_DAG_WHY}" in acks[0]
    assert sum("runbook started" in text for text in texts) == 1


def test_alert_for_a_dag_that_appears_later_starts_on_its_next_notification_once(
    intake: IntakeHarness, tmp_path: Path
) -> None:
    """The route names a DAG whose file is not parsed yet; once the dag-processor has it, the next notification
    of the same alert (Alertmanager's repeat) starts it: the ledger said "missing", not "decided"."""
    import uuid

    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete, update

    from tests.fixtures.alert_intake import TEST_ROUTES
    from toilless.intake.service import SettingsProvider

    late_dag = f"test.late_dag_{uuid.uuid4().hex[:8]}"  # unique: the session's metadata DB outlives this test
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        TEST_ROUTES.read_text()
        + f"""
  - name: late-dag
    dag_id: {late_dag}
    matchers: ['alertname="TestLateDag"']
    target: [instance]
"""
    )
    intake.service.provider = SettingsProvider(ttl=0, routes_path=routes)
    alert = make_alert("TestLateDag", fingerprint="0000000000000004", instance="l-1", environment="staging")

    before = intake.post_decided(make_payload(alert))
    assert before.status_code == 200, before.text
    assert before.json()["counts"] == {"missing": 1}
    assert intake.post_decided(make_payload(alert)).json()["counts"] == {"duplicate": 1}

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "late_dag.py").write_text(
        f"""from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="{late_dag}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def late():
    @task
    def noop() -> None:
        pass

    noop()


late()
"""
    )
    bag = DagBag(dag_folder=folder, bundle_path=folder, bundle_name="test-fixtures")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "test-fixtures", None)
    try:
        after = intake.post_decided(make_payload(alert))
        again = intake.post_decided(make_payload(alert))

        assert after.json()["counts"] == {"started": 1}, after.text
        assert again.json()["counts"] == {"duplicate": 1}
        assert len(intake.runs(late_dag)) == 1
        intake.deliver()
        texts = [m["text"] for m in intake.slack_sink.messages()]
        assert sum("runbook missing" in text for text in texts) == 1, texts
        assert sum("runbook started" in text for text in texts) == 1, texts
    finally:
        with create_session() as session:
            session.execute(delete(DagRun).where(DagRun.dag_id == late_dag))
            session.execute(update(DagModel).where(DagModel.dag_id == late_dag).values(is_stale=True))


def test_alert_for_a_dag_not_serialized_yet_is_acked_missing_and_the_others_start(
    two_dag_routes: IntakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DagModel row without a serialized version (mid-parse) is answered like an unknown DAG, never a 503."""
    intake = two_dag_routes
    _set_other_dag(is_paused=False, is_stale=False)
    real_dag = intake.service._dag
    monkeypatch.setattr(
        intake.service, "_dag", lambda dag_id, session: None if dag_id == OTHER_DAG else real_dag(dag_id, session)
    )
    blocked = make_alert("TestOtherDag", fingerprint="0000000000000005", instance="o-5", environment="staging")

    response = intake.post_decided(make_payload(blocked, make_alert(**PROD_DISK)))

    assert response.status_code == 200, response.text
    assert response.json()["counts"] == {"missing": 1, "started": 1}
    assert intake.runs(OTHER_DAG) == []
    # Serialized now: the next notification of the same alert starts it, once.
    monkeypatch.setattr(intake.service, "_dag", real_dag)
    assert intake.post_decided(make_payload(blocked)).json()["counts"] == {"started": 1}
    assert len(intake.runs(OTHER_DAG)) == 1


# -- 16: the DAG cache is bounded and thread-safe -----------------------------------------------------------------
def test_dag_cache_is_bounded_locked_and_one_per_service(intake: IntakeHarness) -> None:
    from airflow.utils.session import create_session

    from toilless.intake.service import DAG_CACHE_SIZE

    bags: list[Any] = []
    dags: list[Any] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait(10)
        with create_session(scoped=False) as session:
            dags.append(intake.service._dag(TARGET_DAG, session))
        bags.append(intake.service._dagbag)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(dags) == 8
    assert all(dag is not None and dag.dag_id == TARGET_DAG for dag in dags)
    assert len({id(bag) for bag in bags}) == 1
    bag = bags[0]
    assert bag._dags.maxsize == DAG_CACHE_SIZE  # bounded (LRU), not an ever-growing dict
    assert hasattr(bag._lock, "acquire")  # a real lock, not DBDagBag's nullcontext
    assert len(bag._dags) == 1
