"""Drill `rds_near_full`: the sandbox RDS instance's free storage falls, RDSLowStorage fires, rds_storage_guard grows it.

The sandbox (sandbox/services/rds_storage_guard.py) keeps ``orders-db`` in moto at 86% of 100 GiB and publishes its
FreeStorageSpace to moto's CloudWatch every minute, as RDS does. The drill:

* inject: a bulk load fills the database to ``LOADED_GIB`` GiB: a background writer (like RDS, a sample every
  ``PUBLISH_SECONDS``) reports ``FreeStorageSpace = allocated now - LOADED_GIB``, so a growth shows as more free space
  at once, the way sandbox/rds_storage_guard_data.py's model does;
* export: a CloudWatch exporter's ``aws_rds_free_storage_space_minimum`` over the last ``WINDOW_SECONDS``;
* recovery: that minimum at or above the alert's ``THRESHOLD_BYTES`` again, which only a growth achieves while the
  load holds.

The guard decides the growth itself. The sandbox's policy (include/config/rds_storage_guard.yaml) has
``auto_grow: false``: the guard asks for approval (Airflow Required Actions, posted to #urgent), and the drill
answers it as the on-call person would, through Airflow's HITL REST route (scenario key ``approval: Approve``).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

GIB = 1024**3
INSTANCE = "orders-db"
#: What the database holds after the bulk load (of the demo's 100 GiB: 93% used, past the guard's 90% critical).
LOADED_GIB = 93.0
#: The alert: under 10 GiB free (the demo starts with 14 GiB free).
THRESHOLD_BYTES = 10 * GIB
WINDOW_SECONDS = 20
PUBLISH_SECONDS = 2.0
#: The writer never outlives a drill's longest budget by much.
MAX_LOAD_SECONDS = 3 * 3600

log = logging.getLogger(__name__)

_writers: list[threading.Event] = []


def client(published: dict[str, Any], service: str) -> Any:
    import boto3

    from sandbox.moto_server import REGION

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=published["moto"]["url"],
        aws_access_key_id="moto-sandbox-key",
        aws_secret_access_key="moto-not-a-real-secret",
    )


def allocated_bytes(rds: Any, instance: str = INSTANCE) -> float:
    return float(
        int(rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["AllocatedStorage"]) * GIB
    )


def publish_loaded(rds: Any, cloudwatch: Any, *, loaded_gib: float = LOADED_GIB, now: datetime | None = None) -> float:
    """One FreeStorageSpace sample of the loaded database: the allocation moto has now minus what it holds."""
    free = max(0.0, allocated_bytes(rds) - loaded_gib * GIB)
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "FreeStorageSpace",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": INSTANCE}],
                "Timestamp": now or datetime.now(UTC),
                "Value": free,
                "Unit": "Bytes",
            }
        ],
    )
    return free


def inject(published: dict[str, Any]) -> str:
    rds, cloudwatch = client(published, "rds"), client(published, "cloudwatch")
    free = publish_loaded(rds, cloudwatch)
    stop = threading.Event()
    _writers.append(stop)

    def keep_publishing() -> None:
        deadline = datetime.now(UTC) + timedelta(seconds=MAX_LOAD_SECONDS)
        while not stop.wait(PUBLISH_SECONDS) and datetime.now(UTC) < deadline:
            try:
                publish_loaded(rds, cloudwatch)
            except Exception:  # moto going away at the end of a drill: the next round, or the end
                log.debug("FreeStorageSpace sample not published", exc_info=True)

    threading.Thread(target=keep_publishing, name="drill-rds-load", daemon=True).start()
    return f"bulk load: {INSTANCE} holds {LOADED_GIB:.0f} GiB, {free / GIB:.1f} GiB free"


def stop_load() -> None:
    """End the bulk load's writers (the database keeps its data; only the drill's sampling stops)."""
    while _writers:
        _writers.pop().set()


def free_minimum(cloudwatch: Any, *, now: datetime | None = None, window: float = WINDOW_SECONDS) -> float | None:
    """The minimum FreeStorageSpace sampled in the last ``window`` seconds, else that of the latest minute with a
    sample in the last hour (RDS itself reports once a minute)."""
    now = now or datetime.now(UTC)
    for seconds, statistic in ((window, "Minimum"), (3600, "Minimum")):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/RDS",
            MetricName="FreeStorageSpace",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": INSTANCE}],
            StartTime=now - timedelta(seconds=seconds),
            EndTime=now + timedelta(seconds=1),
            Period=60,
            Statistics=[statistic],
        )["Datapoints"]
        if points:
            if seconds <= 60:
                return float(min(point[statistic] for point in points))
            return float(max(points, key=lambda point: point["Timestamp"])[statistic])
    return None


def export(published: dict[str, Any]) -> dict[str, float]:
    from sandbox.drill.exporters import labels_text

    free = free_minimum(client(published, "cloudwatch"))
    if free is None:
        return {}
    labels = labels_text({"dbinstance_identifier": INSTANCE})
    return {f"aws_rds_free_storage_space_minimum{{{labels}}}": free}


def storage_ok(published: dict[str, Any]) -> bool:
    try:
        free = free_minimum(client(published, "cloudwatch"))
    except Exception:
        return False
    return free is not None and free >= THRESHOLD_BYTES
