"""msk_cpu_headroom end to end (dag.test()): CloudWatch in a moto server seeded with PutMetricData for brokers and
topics, the Slack sink, and MSK through botocore's Stubber on a real ``kafka`` client.

Why the Stubber for MSK: moto 5.2.5 has no UpdateBrokerType, and the ARNs it makes for DescribeClusterV2 lack the
cluster-name segment of real MSK ARNs (refused by the SOP's ARN check). The Stubber checks every request against
botocore's MSK service model and the exact parameters expected, and fails the run on any call nobody expected, so
"nothing changed" is proven by the absence of a queued UpdateBrokerType.

Approvals are answered from another thread through the metadata DB, as the REST API's PATCH .../hitlDetails does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from sandbox.msk_cpu_headroom_data import cluster_arn, describe_cluster_response, flat, jump, seed_cluster_metrics
from sandbox.slack_sink import SlackSink

pytestmark = pytest.mark.integration

DAG_ID = "msk_cpu_headroom"
NAME = "orders-kafka"
ARN = cluster_arn(NAME)
REPORT = "infrastructure"
CONNECT = "observability_kafka_integration"
#: The shared maintenance window (Sunday 02:00-04:00 UTC) must not make these tests depend on the clock.
SETTINGS = {"respect_maintenance_window": False, "topic_owners": {"orders.*": "team-orders"}}


class Msk:
    """The cluster: CloudWatch metrics in moto, MSK answers queued on a Stubber shared by every MskHook."""

    def __init__(self, moto: Any, stubber: Stubber) -> None:
        self.cloudwatch = moto.client("cloudwatch")
        self.stubber = stubber

    def seed(self, profile: str, topics: dict[str, Any] | None = None) -> None:
        seed_cluster_metrics(self.cloudwatch, NAME, brokers=3, profile=profile, topics=topics)

    def describe(self, **kwargs: Any) -> None:
        self.stubber.add_response(
            "describe_cluster_v2", describe_cluster_response(ARN, NAME, **kwargs), {"ClusterArn": ARN}
        )


@pytest.fixture
def msk(moto_server, slack_sink, set_variable, monkeypatch) -> Iterator[Msk]:
    from toilless.hooks.msk import MskHook

    set_variable(f"toilless_{DAG_ID}", SETTINGS)
    client = boto3.client("kafka", region_name="eu-central-1")
    stubber = Stubber(client)
    monkeypatch.setattr(MskHook, "kafka", property(lambda self: client))
    with stubber:
        yield Msk(moto_server, stubber)
        stubber.assert_no_pending_responses()


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def report(sink: SlackSink) -> str:
    [message] = [m for m in sink.messages(REPORT) if "MSK CPU headroom" in m["text"]]
    return message["text"]


def test_spike_on_connect_component_topics_asks_their_channel(
    msk: Msk, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    msk.seed("spike", {"connect-component-perf-test": jump(1e6, 2e7), "orders.created": flat(2e6)})
    msk.describe()
    run = run_dag(DAG_ID, run_conf={"cluster_arn": ARN})
    assert run.state == "success", states(run)
    assert states(run)["first_approval"] == "skipped"
    [request] = slack_sink.messages(CONNECT)
    assert "Please reduce the load" in request["text"]
    assert "connect-component-perf-test" in request["text"]
    assert "20,000.0 KB/s" not in request["text"]  # rates are shown in the largest unit
    assert "20.0 MB/s over the last hour (7-day median 1.0 MB/s, +19.0 MB/s)" in request["text"]
    assert "85.0% CPU used" in request["text"]
    text = report(slack_sink)
    assert "URGENT" in text
    assert "spike" in text


def test_spike_on_other_topics_asks_owners_and_lists_unknown_ones(
    msk: Msk, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    msk.seed("spike", {"payments.events": jump(1e6, 1.5e7), "orders.created": jump(1e6, 6e6)})
    msk.describe()
    run = run_dag(DAG_ID, run_conf={"cluster_arn": ARN})
    assert run.state == "success", states(run)
    assert slack_sink.messages(CONNECT) == []
    [question] = [m for m in slack_sink.messages(REPORT) if "Owners of these topics" in m["text"]]
    assert "owner team-orders" in question["text"]
    assert "unknown owner (add them to topic_owners): `payments.events`" in question["text"]


def test_steady_rise_recommends_a_larger_type_with_the_cost_in_a_dry_run(
    msk: Msk, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    msk.seed("steady_rise")
    msk.describe()
    run = run_dag(DAG_ID, run_conf={"cluster_arn": ARN, "dry_run": True})
    assert run.state == "success", states(run)
    assert states(run)["first_approval"] == "skipped"
    assert states(run)["resize_broker_type"] == "skipped"
    text = report(slack_sink)
    assert "[dry run: nothing changed]" in text
    assert "steady rise" in text
    assert "recommend `kafka.m5.large` -> `kafka.m5.xlarge` (2 -> 4 vCPU)" in text
    # (0.42 - 0.21 USD per broker-hour) x 3 brokers x 730 h, and where the prices come from.
    assert "459.90 -> 919.80 USD/month for 3 brokers (+459.90 USD/month; prices: AWS MSK pricing page" in text
    assert slack_sink.messages("urgent") == []


def test_healthy_cluster_reports_ok_and_asks_nobody(
    msk: Msk, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    msk.seed("healthy", {"orders.created": flat(2e6)})
    msk.describe()
    run = run_dag(DAG_ID, run_conf={"cluster_arn": ARN})
    assert run.state == "success", states(run)
    assert "OK" in report(slack_sink)
    assert "broker 1: 30.0% used (headroom 70.0%)" in report(slack_sink)
    assert [m for m in slack_sink.messages() if "MSK CPU headroom" not in m["text"]] == []


class Approvers:
    """People answering the two approval requests, in order, as the UI's Required Actions would."""

    def __init__(self, answers: list[tuple[str, str, str]]) -> None:
        self.answers = list(answers)  # (task_id, option, user)
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="approvers", daemon=True)

    def _run(self) -> None:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        while self.answers and not self._stop.wait(0.5):
            task_id, option, user = self.answers[0]
            with create_session() as session:
                found = (
                    session.query(HITLDetail, TaskInstance)
                    .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
                    .filter(TaskInstance.dag_id == DAG_ID, TaskInstance.task_id == task_id)
                    .filter(TaskInstance.state == TaskInstanceState.AWAITING_INPUT)
                    .filter(HITLDetail.responded_at.is_(None))
                    .one_or_none()
                )
                if found is None:
                    continue
                detail, task_instance = found
                detail.chosen_options = [option]
                detail.responded_by = {"id": user, "name": user}
                detail.responded_at = datetime.now(UTC)
                detail.params_input = {}
                session.add(detail)
                handle_event_submit(
                    TriggerEvent(detail.as_resume_event_payload()), task_instance=task_instance, session=session
                )
            self.answers.pop(0)
        self.done.set()

    def __enter__(self) -> Approvers:
        # Import Airflow's models and DAG parsing here, in the test's thread, before the answering thread starts:
        # both threads importing them at once (the thread's first query configures every mapper) deadlocked on
        # Python's import lock when this test ran first in a session.
        import airflow.dag_processing.dagbag  # noqa: F401
        from airflow.models import import_all_models
        from sqlalchemy.orm import configure_mappers

        import_all_models()
        configure_mappers()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_two_approvals_by_the_same_person_change_nothing(
    msk: Msk, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    msk.seed("steady_rise")
    msk.describe()  # measure_cpu only: no UpdateBrokerType is queued, so any would fail the run
    answers = [("first_approval", "Approve", "alice"), ("second_approval", "Approve", "alice")]
    with Approvers(answers) as approvers:
        run = run_dag(DAG_ID, run_conf={"cluster_arn": ARN, "approval_timeout_minutes": 5})
    assert approvers.done.is_set()
    assert run.state == "success", states(run)
    assert states(run)["resize_broker_type"] == "success"
    text = report(slack_sink)
    assert "resize: not_approved (both approvals are by the same person (alice)" in text
    requests = slack_sink.messages("urgent")
    assert len(requests) == 2
    assert "Second approval (a different person)" in requests[1]["text"]


def test_two_different_approvers_resize_and_the_cluster_is_verified_active(
    msk: Msk, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    msk.seed("steady_rise")
    msk.describe()  # measure_cpu
    msk.describe()  # resize_broker_type re-reads right before acting
    msk.stubber.add_response(
        "update_broker_type",
        {"ClusterArn": ARN, "ClusterOperationArn": ARN.replace(":cluster/", ":cluster-operation/")},
        {"ClusterArn": ARN, "CurrentVersion": "K3AEGXETSR30VB", "TargetInstanceType": "kafka.m5.xlarge"},
    )
    msk.stubber.add_response("tag_resource", {}, {"ResourceArn": ARN, "Tags": ANY})
    msk.describe(instance_type="kafka.m5.xlarge", current_version="K2")  # verify_cluster_active
    answers = [("first_approval", "Approve", "alice"), ("second_approval", "Approve", "bob")]
    with Approvers(answers):
        run = run_dag(DAG_ID, run_conf={"cluster_arn": ARN, "approval_timeout_minutes": 5})
    assert run.state == "success", states(run)
    assert states(run)["verify_cluster_active"] == "success"
    text = report(slack_sink)
    assert "resize: modified" in text
    assert "verified: cluster ACTIVE with broker type kafka.m5.xlarge" in text


def test_unknown_cluster_arn_fails_clearly_and_changes_nothing(
    msk: Msk, run_dag: Callable[..., Any], slack_sink: SlackSink
) -> None:
    msk.stubber.add_client_error(
        "describe_cluster_v2",
        service_error_code="NotFoundException",
        http_status_code=404,
        expected_params={"ClusterArn": ARN},
    )
    run = run_dag(DAG_ID, run_conf={"cluster_arn": ARN})
    assert run.state == "failed"
    assert states(run)["measure_cpu"] == "failed"
    failures = [m for m in slack_sink.messages() if f"no MSK cluster {ARN}" in m["text"]]
    assert len(failures) == 1  # failed at once (bad input is not retried), told once


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        pytest.param(
            {"cluster_arn": "arn:aws:kafka:eu-central-1:123456789012:cluster/x"},
            "not an MSK cluster ARN",
            id="malformed-arn",
        ),
        pytest.param({}, "no cluster", id="no-cluster"),
        pytest.param({"cluster_arn": ARN, "allow_resize": True}, None, id="allow-resize-on-when-configured-on"),
    ],
)
def test_cluster_and_params_are_checked_before_anything_is_read(conf: dict[str, Any], message: str | None) -> None:
    from toilless.sops.msk_cpu_headroom.steps import ClusterScopeError, cluster_for_run

    settings = {"clusters": {}, "alert_arn_labels": ["cluster_arn"], "alert_name_labels": ["cluster_name"]}
    if message is None:
        assert cluster_for_run(settings, conf.get("cluster_arn"), None) == ARN
        return
    with pytest.raises(ClusterScopeError, match=message):
        cluster_for_run(settings, conf.get("cluster_arn"), None)


def test_alert_names_the_cluster_and_the_scope_holds() -> None:
    from toilless.sops.msk_cpu_headroom.steps import ClusterScopeError, cluster_for_run

    settings = {
        "clusters": {NAME: ARN},
        "alert_arn_labels": ["cluster_arn"],
        "alert_name_labels": ["cluster_name", "Cluster Name"],
    }
    assert cluster_for_run(settings, None, {"labels": {"Cluster Name": NAME}}) == ARN
    with pytest.raises(ClusterScopeError, match="not in the configured clusters"):
        cluster_for_run(settings, None, {"labels": {"cluster_name": "other"}})
    with pytest.raises(ClusterScopeError, match="not one of the configured clusters"):
        cluster_for_run(settings, cluster_arn("other"), None)
