"""An in-memory RDS that enforces the documented request contracts moto does not (tag characters, identifiers).

Only what the storage guard calls: describe_db_instances (plain and paginated), describe_events (paginated),
add_tags_to_resource, modify_db_instance. Failures are injected per call, to crash the guard at each step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError

from toilless.common import aws_contracts


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation
    )


@dataclass
class FakeInstance:
    identifier: str
    allocated_gib: int = 100
    status: str = "available"
    storage_type: str = "gp3"
    max_allocated_gib: int | None = None
    pending_gib: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"arn:aws:rds:eu-central-1:123456789012:db:{self.identifier}"

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "DBInstanceIdentifier": self.identifier,
            "DBInstanceArn": self.arn,
            "DBInstanceStatus": self.status,
            "StorageType": self.storage_type,
            "AllocatedStorage": self.allocated_gib,
            "MultiAZ": False,
            "PendingModifiedValues": {"AllocatedStorage": self.pending_gib} if self.pending_gib else {},
            "TagList": [{"Key": key, "Value": value} for key, value in self.tags.items()],
        }
        if self.max_allocated_gib is not None:
            data["MaxAllocatedStorage"] = self.max_allocated_gib
        return data


class FakeRds:
    """The RDS client stand-in. ``fail[operation]`` is a list of exceptions raised by the next calls (None = pass);
    ``crash_after[operation]`` raises ConnectionError after the call took effect (the answer is lost)."""

    def __init__(self, *instances: FakeInstance, apply_immediately_lands: bool = True) -> None:
        self.instances = {instance.identifier: instance for instance in instances}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, list[BaseException | None]] = {}
        self.crash_after: dict[str, int] = {}
        self.apply_immediately_lands = apply_immediately_lands
        #: The time RDS stamps on its events (tests run the guard at chosen moments).
        self.now: datetime | None = None
        self.meta = SimpleNamespace(region_name="eu-central-1")

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _enter(self, operation: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((operation, kwargs))
        queued = self.fail.get(operation)
        if queued:
            error = queued.pop(0)
            if error is not None:
                raise error

    def _leave(self, operation: str) -> None:
        if self.crash_after.get(operation, 0) > 0:
            self.crash_after[operation] -= 1
            raise ConnectionError(f"connection lost after {operation}")

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.calls if name == operation)

    def get_paginator(self, operation: str) -> Any:
        method: Callable[..., dict[str, Any]] = getattr(self, operation)

        def paginate(**kwargs: Any) -> Iterator[dict[str, Any]]:
            yield method(**kwargs)

        return SimpleNamespace(paginate=paginate)

    # -- the API -----------------------------------------------------------------------------------------------
    def describe_db_instances(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("describe_db_instances", kwargs)
        ids: list[str] = []
        for flt in kwargs.get("Filters") or []:
            aws_contracts.check_instance_filter(flt["Values"])
            ids.extend(flt["Values"])
        found = [i.describe() for i in self.instances.values() if not ids or i.identifier in ids]
        return {"DBInstances": found}

    def describe_events(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("describe_events", kwargs)
        aws_contracts.check_describe_events(kwargs["SourceIdentifier"], kwargs["Duration"])
        return {"Events": list(self.instances[kwargs["SourceIdentifier"]].events)}

    def add_tags_to_resource(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("add_tags_to_resource", kwargs)
        try:
            aws_contracts.check_rds_tags(kwargs["Tags"])
        except aws_contracts.AwsContractError as err:
            # What real RDS answers (moto stores the tag).
            raise client_error("InvalidParameterValue", str(err), "AddTagsToResource") from err
        instance = next(i for i in self.instances.values() if i.arn == kwargs["ResourceName"])
        for tag in kwargs["Tags"]:
            instance.tags[tag["Key"]] = tag["Value"]
        self._leave("add_tags_to_resource")
        return {}

    def modify_db_instance(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("modify_db_instance", kwargs)
        aws_contracts.check_db_instance_identifier(kwargs["DBInstanceIdentifier"])
        instance = self.instances[kwargs["DBInstanceIdentifier"]]
        target = kwargs["AllocatedStorage"]
        if target < instance.allocated_gib * 1.1:
            raise client_error("InvalidParameterCombination", "increase by at least 10%", "ModifyDBInstance")
        if self.apply_immediately_lands:
            instance.allocated_gib = target
            instance.status = "storage-optimization"
        else:
            instance.pending_gib = target
            instance.status = "modifying"
        if "MaxAllocatedStorage" in kwargs:
            instance.max_allocated_gib = kwargs["MaxAllocatedStorage"]
        instance.events.append(
            {
                "Date": self.now or datetime.now(UTC),
                "Message": "Applied change to DB instance: modification to allocated storage",
            }
        )
        self._leave("modify_db_instance")
        return {"DBInstance": instance.describe()}
