"""Kafka (AWS MSK) CPU headroom demo (msk_cpu_headroom), for `make run`.

* CloudWatch metrics in the sandbox's moto (``ctx.published["moto"]``): cluster ``orders-kafka`` (3 x kafka.m5.large)
  whose CPU rose steadily over the week (warning: a resize is recommended), and ``events-kafka`` with a spike on
  ``connect-component`` topics in the last hour (the load request goes to #observability-kafka-integration).
* An MSK stand-in (sandbox/msk_standin.py) on a port from ctx.port(5085): DescribeClusterV2, UpdateBrokerType,
  TagResource; a resize takes the cluster through UPDATING back to ACTIVE.
* Connection ``aws_msk_sandbox``: CloudWatch at moto, ``kafka`` at the stand-in (per-service endpoint_url).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sandbox.msk_cpu_headroom_data import cluster_arn, flat, jump, seed_cluster_metrics
from sandbox.msk_standin import MskStandIn
from sandbox.service import SandboxContext, Service

log = logging.getLogger("sandbox")

CONN_ID = "aws_msk_sandbox"
RISING = "orders-kafka"
SPIKING = "events-kafka"


class MskCpuHeadroomService(Service):
    name = "msk_cpu_headroom"
    order = 50
    description = "MSK CPU headroom demo: a steadily rising and a spiking Kafka cluster (msk_cpu_headroom)"

    def __init__(self) -> None:
        self.standin: MskStandIn | None = None
        self._seeder: threading.Thread | None = None

    def start(self, ctx: SandboxContext) -> None:
        self.standin = MskStandIn(ctx.port(5085), update_seconds=60).start()
        self.standin.add_cluster(cluster_arn(RISING), RISING, instance_type="kafka.m5.large")
        self.standin.add_cluster(cluster_arn(SPIKING), SPIKING, instance_type="kafka.m5.xlarge")
        # PutMetricData of two weeks of samples takes a few seconds: in the background while Airflow starts.
        self._seeder = threading.Thread(target=self._seed, args=(ctx.published["moto"],), daemon=True)
        self._seeder.start()

    def _seed(self, moto: Any) -> None:
        try:
            cloudwatch = moto.client("cloudwatch")
            now = datetime.now(UTC)
            seed_cluster_metrics(
                cloudwatch, RISING, profile="steady_rise", topics={"orders.created": flat(2e6)}, now=now
            )
            seed_cluster_metrics(
                cloudwatch,
                SPIKING,
                profile="spike",
                topics={"connect-component-perf": jump(1e6, 2e7), "payments.events": flat(3e6)},
                now=now,
            )
        except Exception:
            log.exception("Seeding the MSK demo metrics failed")

    def stop(self) -> None:
        if self.standin is not None:
            self.standin.stop()
            self.standin = None

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        moto = ctx.published["moto"]
        connection = moto.connection()
        assert self.standin is not None
        connection["extra"]["service_config"] = {"kafka": {"endpoint_url": self.standin.url}}
        return {CONN_ID: connection}

    def variables(self, ctx: SandboxContext) -> dict[str, str]:
        override = {
            "aws_conn_id": CONN_ID,
            "clusters": {RISING: cluster_arn(RISING), SPIKING: cluster_arn(SPIKING)},
            "default_cluster_arn": cluster_arn(RISING),
            "topic_owners": {"orders.*": "team-orders"},
        }
        return {"toilless_msk_cpu_headroom": json.dumps(override)}

    def summary(self, ctx: SandboxContext) -> str:
        if self._seeder is not None:
            self._seeder.join(60)
        url = self.standin.url if self.standin else "(not started)"
        return (
            f"{self.description}; MSK stand-in on {url}; trigger msk_cpu_headroom (default {RISING}, or "
            f"cluster_arn {cluster_arn(SPIKING)})"
        )
