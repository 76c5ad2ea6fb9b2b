"""The broker-type change, once per incident, against botocore's Stubber.

moto 5.2.5 emulates DescribeClusterV2 but has no UpdateBrokerType, and its cluster ARNs lack the cluster-name segment
real MSK ARNs have (cluster/<name>/<uuid>-<n>), which the SOP's ARN check refuses. So the MSK calls are tested with
botocore's Stubber on a real ``kafka`` client: it checks each request against the service model (names, types,
required members) and the exact parameters expected here, and fails on any call not expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sandbox.msk_cpu_headroom_data import cluster_arn, describe_cluster_response
from toilless.common.aws_contracts import AwsContractError
from toilless.common.gate import GatePolicy
from toilless.common.policies import WeeklyWindow
from toilless.hooks.msk import ClusterNotFoundError, MskHook
from toilless.sops.msk_cpu_headroom.resize import HISTORY_TAG, MARKER_TAG, marker_value, resize_once

ARN = cluster_arn("orders-kafka")
ALLOWED = ["kafka.m5.large", "kafka.m5.xlarge", "kafka.m5.2xlarge"]
ALICE = {"chosen_options": ["Approve"], "responded_by_user": {"id": "alice", "name": "Alice"}}
BOB = {"chosen_options": ["Approve"], "responded_by_user": {"id": "bob", "name": "Bob"}}
NOW = datetime.now(UTC).replace(microsecond=0)
NO_GATE = GatePolicy()


@pytest.fixture
def msk() -> Iterator[tuple[MskHook, Stubber]]:
    client = boto3.client("kafka", region_name="eu-central-1")
    stubber = Stubber(client)
    hook = MskHook(aws_conn_id=None, region_name="eu-central-1")
    hook.__dict__["kafka"] = client  # the cached_property's slot: no Connection needed
    with stubber:
        yield hook, stubber
        # Every expected call was made, and (Stubber raises on any other) nothing else.
        stubber.assert_no_pending_responses()


def describe(stubber: Stubber, **kwargs: Any) -> None:
    stubber.add_response(
        "describe_cluster_v2", describe_cluster_response(ARN, "orders-kafka", **kwargs), {"ClusterArn": ARN}
    )


def resize(
    hook: MskHook, *, approvals: Any = (ALICE, BOB), policy: GatePolicy = NO_GATE, **kwargs: Any
) -> dict[str, Any]:
    args = {
        "from_type": "kafka.m5.large",
        "target_type": "kafka.m5.xlarge",
        "incident": "fp1@2026-01-01T00:00:00Z",
        "approvals": approvals,
        "allowed_types": ALLOWED,
        "gate_policy": policy,
        "now": NOW,
        **kwargs,
    }
    return resize_once(hook, ARN, **args)


def test_two_different_approvers_change_the_broker_type_once(msk: tuple[MskHook, Stubber]) -> None:
    hook, stubber = msk
    describe(stubber)
    stubber.add_response(
        "update_broker_type",
        {"ClusterArn": ARN, "ClusterOperationArn": ARN.replace(":cluster/", ":cluster-operation/")},
        {"ClusterArn": ARN, "CurrentVersion": "K3AEGXETSR30VB", "TargetInstanceType": "kafka.m5.xlarge"},
    )
    expected_marker = marker_value(NOW, "fp1@2026-01-01T00:00:00Z", "kafka.m5.large", "kafka.m5.xlarge")
    stubber.add_response(
        "tag_resource",
        {},
        {"ResourceArn": ARN, "Tags": {MARKER_TAG: expected_marker, HISTORY_TAG: str(int(NOW.timestamp()))}},
    )
    result = resize(hook)
    assert result["outcome"] == "modified"
    assert result["approval"]["approvers"] == ["alice", "bob"]
    assert result["marker"] == {"written": True, "value": expected_marker}


def test_two_approvals_by_the_same_person_change_nothing(msk: tuple[MskHook, Stubber]) -> None:
    hook, _ = msk  # no response queued: any MSK call would fail the test
    result = resize(hook, approvals=(ALICE, {**ALICE}))
    assert result["outcome"] == "not_approved"
    assert "same person (alice)" in result["reason"]
    assert result["modified"] is False


def test_dry_run_reads_and_changes_nothing(msk: tuple[MskHook, Stubber]) -> None:
    hook, stubber = msk
    describe(stubber)
    result = resize(hook, policy=GatePolicy(dry_run=True))
    assert result["outcome"] == "dry_run"
    assert "nothing changed" in result["reason"]


def test_once_per_incident(msk: tuple[MskHook, Stubber]) -> None:
    hook, stubber = msk
    earlier = marker_value(NOW - timedelta(days=3), "fp1@2026-01-01T00:00:00Z", "kafka.m5.large", "kafka.m5.xlarge")
    # The type went back (someone resized by hand): the same incident still does not resize twice.
    describe(stubber, tags={MARKER_TAG: earlier})
    result = resize(hook)
    assert result["outcome"] == "gate_refused"
    assert result["gate"]["check"] == "once_per_incident"


def test_maintenance_window_refuses(msk: tuple[MskHook, Stubber]) -> None:
    hook, stubber = msk
    describe(stubber)
    always = WeeklyWindow.from_config({"days": list(range(7)), "start": "00:00", "end": "23:59"})
    result = resize(hook, policy=GatePolicy(maintenance_window=always), now=NOW.replace(hour=12))
    assert result["outcome"] == "gate_refused"
    assert "maintenance window" in result["reason"]


@pytest.mark.parametrize(
    ("describe_kwargs", "outcome", "why"),
    [
        pytest.param({"instance_type": "kafka.m5.xlarge"}, "already_done", "already", id="already-at-target"),
        pytest.param({"state": "UPDATING"}, "blocked", "not ACTIVE", id="operation-running"),
        pytest.param({"instance_type": "kafka.m5.2xlarge"}, "blocked", "changed from", id="changed-since-decision"),
    ],
)
def test_re_read_before_acting(
    msk: tuple[MskHook, Stubber], describe_kwargs: dict[str, Any], outcome: str, why: str
) -> None:
    hook, stubber = msk
    describe(stubber, **describe_kwargs)
    result = resize(hook)
    assert result["outcome"] == outcome
    assert why in result["reason"]
    assert result["modified"] is False


def test_unknown_cluster_arn_is_a_clear_error(msk: tuple[MskHook, Stubber]) -> None:
    hook, stubber = msk
    stubber.add_client_error(
        "describe_cluster_v2",
        service_error_code="NotFoundException",
        http_status_code=404,
        expected_params={"ClusterArn": ARN},
    )
    with pytest.raises(ClusterNotFoundError, match="no MSK cluster"):
        resize(hook)


def test_target_outside_the_allowed_list_is_refused_before_any_call(msk: tuple[MskHook, Stubber]) -> None:
    hook, _ = msk
    with pytest.raises(AwsContractError, match="allowed list"):
        resize(hook, target_type="kafka.m5.8xlarge")
