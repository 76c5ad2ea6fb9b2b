"""The sandbox's MSK stand-in speaks MSK's real wire format: the SOP's hook (botocore's kafka client, through an
Airflow AWS Connection with a per-service endpoint) describes, resizes and tags a cluster on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.msk_cpu_headroom_data import cluster_arn
from sandbox.msk_standin import MskStandIn
from toilless.hooks.msk import ClusterNotFoundError, MskHook
from toilless.sops.msk_cpu_headroom.resize import instance_type

ARN = cluster_arn("demo")


@pytest.fixture
def standin(set_connection: Callable[[str, dict[str, Any]], None]) -> Iterator[MskStandIn]:
    with MskStandIn(update_seconds=0.3) as server:
        server.add_cluster(ARN, "demo", instance_type="kafka.m5.large")
        set_connection(
            "msk_standin",
            {
                "conn_type": "aws",
                "login": "x",
                "password": "y",
                "extra": {"region_name": "eu-central-1", "service_config": {"kafka": {"endpoint_url": server.url}}},
            },
        )
        yield server


def test_resize_through_the_standin(standin: MskStandIn) -> None:
    hook = MskHook(aws_conn_id="msk_standin")
    info = hook.describe_cluster(ARN)
    assert (info["State"], instance_type(info)) == ("ACTIVE", "kafka.m5.large")
    operation = hook.update_broker_type(
        ARN,
        current_version=info["CurrentVersion"],
        target_instance_type="kafka.m5.xlarge",
        allowed_types=["kafka.m5.xlarge"],
    )
    assert ":cluster-operation/" in operation
    hook.tag_cluster(ARN, {"toilless:msk-resize-last": "x"})
    assert hook.describe_cluster(ARN)["State"] == "UPDATING"
    time.sleep(0.4)
    after = hook.describe_cluster(ARN)
    assert (after["State"], instance_type(after)) == ("ACTIVE", "kafka.m5.xlarge")
    assert after["Tags"] == {"toilless:msk-resize-last": "x"}
    assert after["CurrentVersion"] != info["CurrentVersion"]


def test_unknown_cluster_is_not_found(standin: MskStandIn) -> None:
    with pytest.raises(ClusterNotFoundError):
        MskHook(aws_conn_id="msk_standin").describe_cluster(cluster_arn("nope"))
