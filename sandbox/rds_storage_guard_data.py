"""RDS demo data: a DB instance in moto with a FreeStorageSpace history in CloudWatch that shows steady growth.

Used by the sandbox seeder (sandbox/services/rds_storage_guard.py) and by the rds_storage_guard tests.

A stand-in must stay consistent with what Toilless does to it: when the guard grows the instance, the data does not
shrink, the free space does. :class:`StorageModel` is the database's used bytes over time, and
:func:`publish_free_storage` reports ``FreeStorageSpace = allocated now - used now`` from moto's current allocation,
as RDS does every minute; the sandbox publishes it periodically (sandbox/services/rds_storage_guard.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

GIB = 1024**3


def free_storage_history(
    allocated_gib: int, used_pct_now: float, growth_gib_per_day: float, *, days: int = 7, now: datetime | None = None
) -> list[tuple[datetime, float]]:
    """Hourly (time, FreeStorageSpace bytes) ending at ``now``: used storage grows by a constant rate."""
    now = now or datetime.now(UTC)
    allocated = allocated_gib * GIB
    used_now = allocated * used_pct_now / 100.0
    points = []
    for hours_ago in range(days * 24, -1, -1):
        used = used_now - growth_gib_per_day * GIB * hours_ago / 24.0
        points.append((now - timedelta(hours=hours_ago), max(0.0, allocated - used)))
    return points


def seed_rds_instance(
    rds: Any,
    cloudwatch: Any,
    instance_id: str,
    *,
    allocated_gib: int = 100,
    used_pct: float = 86.0,
    growth_gib_per_day: float = 0.5,
    storage_type: str = "gp3",
    max_allocated_gib: int | None = None,
    multi_az: bool = False,
    tags: dict[str, str] | None = None,
    days: int = 7,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Create the instance (unless it exists) and put its FreeStorageSpace history; idempotent per moto server."""
    existing = rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [instance_id]}])["DBInstances"]
    if existing:
        return existing[0]
    kwargs: dict[str, Any] = {
        "DBInstanceIdentifier": instance_id,
        "DBInstanceClass": "db.t3.medium",
        "Engine": "postgres",
        "AllocatedStorage": allocated_gib,
        "StorageType": storage_type,
        "MasterUsername": "sandbox",
        "MasterUserPassword": "sandbox-password",
        "MultiAZ": multi_az,
        "Tags": [{"Key": key, "Value": value} for key, value in (tags or {}).items()],
    }
    if max_allocated_gib is not None:
        kwargs["MaxAllocatedStorage"] = max_allocated_gib
    created = rds.create_db_instance(**kwargs)["DBInstance"]
    history = free_storage_history(allocated_gib, used_pct, growth_gib_per_day, days=days, now=now)
    data = [
        {
            "MetricName": "FreeStorageSpace",
            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance_id}],
            "Timestamp": moment,
            "Value": value,
            "Unit": "Bytes",
        }
        for moment, value in history
    ]
    for offset in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=data[offset : offset + 500])
    return created


@dataclass(frozen=True)
class StorageModel:
    """How much data the demo database holds: ``used_pct`` of ``allocated_gib`` at ``at``, growing steadily."""

    instance_id: str
    allocated_gib: int
    used_pct: float
    growth_gib_per_day: float
    at: datetime

    def used_bytes(self, now: datetime) -> float:
        days = (now - self.at).total_seconds() / 86400.0
        return self.allocated_gib * GIB * self.used_pct / 100.0 + self.growth_gib_per_day * GIB * days


def publish_free_storage(rds: Any, cloudwatch: Any, model: StorageModel, *, now: datetime | None = None) -> float:
    """Put one FreeStorageSpace sample: the instance's allocation as moto has it now, minus the data it holds.

    Returns the bytes published.
    """
    now = now or datetime.now(UTC)
    instance = rds.describe_db_instances(DBInstanceIdentifier=model.instance_id)["DBInstances"][0]
    free = max(0.0, int(instance["AllocatedStorage"]) * GIB - model.used_bytes(now))
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "FreeStorageSpace",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": model.instance_id}],
                "Timestamp": now,
                "Value": free,
                "Unit": "Bytes",
            }
        ],
    )
    return free
