"""Route 53 failover record sets for Toilless: read which server the PRIMARY record serves, and move it.

Imports boto3 through the Amazon provider: import this module inside tasks, never at DAG-parse time. A failover record
set is two records of one name and type with ``Failover`` PRIMARY and SECONDARY (each with a ``SetIdentifier`` and
usually a ``HealthCheckId``). The documented manual failover is a ``ChangeResourceRecordSets`` that points PRIMARY at
the standby; the change is done when ``GetChange`` says ``INSYNC``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

#: Route 53's documented limits: hosted zone ids are up to 32 characters; SetIdentifier 1-128; TTL 0-2147483647.
_ZONE_ID = re.compile(r"^[A-Z0-9]{1,32}\Z")
MAX_SET_IDENTIFIER = 128
MAX_TTL = 2_147_483_647


class Route53ContractError(ValueError):
    """A value that Route 53's API reference does not accept."""


def check_hosted_zone_id(zone_id: Any) -> str:
    text = str(zone_id or "").removeprefix("/hostedzone/")
    if not _ZONE_ID.match(text):
        raise Route53ContractError(f"hosted zone id {zone_id!r}: up to 32 upper-case letters and digits")
    return text


def check_set_identifier(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SET_IDENTIFIER:
        raise Route53ContractError(f"SetIdentifier {value!r}: 1-{MAX_SET_IDENTIFIER} characters")
    return value


def check_ttl(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TTL:
        raise Route53ContractError(f"TTL {value!r}: an integer 0-{MAX_TTL}")
    return value


class Route53FailoverHook(AwsBaseHook):
    """One failover record set (name + type) in one hosted zone.

    :param hosted_zone_id: the zone's id (``Z...``; a ``/hostedzone/`` prefix is accepted).
    :param record_name: the failover record's name (already checked as a DNS name by the SOP).
    :param record_type: A or AAAA.
    :param aws_conn_id: AWS Connection id (``extra.endpoint_url`` points it at moto in tests and the sandbox).
    """

    def __init__(
        self,
        *,
        hosted_zone_id: str,
        record_name: str,
        record_type: str = "A",
        aws_conn_id: str | None = "aws_default",
    ) -> None:
        super().__init__(aws_conn_id=aws_conn_id, client_type="route53")
        self.hosted_zone_id = check_hosted_zone_id(hosted_zone_id)
        self.record_name = record_name.rstrip(".").lower() + "."
        self.record_type = record_type

    @cached_property
    def route53(self) -> Any:
        return self.conn

    def failover_records(self) -> dict[str, dict[str, Any]]:
        """``{"PRIMARY": record, "SECONDARY": record}`` as Route 53 returns them (either may be missing)."""
        response = self.route53.list_resource_record_sets(
            HostedZoneId=self.hosted_zone_id,
            StartRecordName=self.record_name,
            StartRecordType=self.record_type,
            MaxItems="10",
        )
        found: dict[str, dict[str, Any]] = {}
        for record in response.get("ResourceRecordSets", []):
            name = str(record.get("Name", "")).lower()
            if name.rstrip(".") + "." != self.record_name or record.get("Type") != self.record_type:
                continue
            role = record.get("Failover")
            if role in ("PRIMARY", "SECONDARY"):
                found[role] = record
        return found

    @staticmethod
    def record_value(record: Mapping[str, Any] | None) -> str | None:
        values = [item.get("Value") for item in (record or {}).get("ResourceRecords", [])]
        return str(values[0]) if len(values) == 1 else None

    def move_primary(
        self,
        *,
        to_address: str,
        to_health_check: str | None,
        old_address: str,
        old_health_check: str | None,
        remove_old: bool,
        wait_seconds: float = 120.0,
        poll_seconds: float = 1.0,
    ) -> dict[str, Any]:
        """Point PRIMARY at ``to_address``; SECONDARY at ``old_address``, or (``remove_old``) delete SECONDARY.

        One ChangeResourceRecordSets batch (Route 53 applies it atomically), then GetChange until INSYNC.
        """
        records = self.failover_records()
        primary = records.get("PRIMARY")
        if primary is None:
            raise Route53ContractError(f"{self.record_name} {self.record_type}: no PRIMARY failover record")
        ttl = check_ttl(int(primary.get("TTL", 60)))
        changes: list[dict[str, Any]] = [
            {"Action": "UPSERT", "ResourceRecordSet": self._record(primary, to_address, to_health_check, ttl)}
        ]
        secondary = records.get("SECONDARY")
        if remove_old:
            if secondary is not None:
                # DELETE must repeat the record exactly as it is.
                changes.append({"Action": "DELETE", "ResourceRecordSet": secondary})
        else:
            template = secondary or {**primary, "SetIdentifier": "secondary", "Failover": "SECONDARY"}
            changes.append(
                {"Action": "UPSERT", "ResourceRecordSet": self._record(template, old_address, old_health_check, ttl)}
            )
        response = self.route53.change_resource_record_sets(
            HostedZoneId=self.hosted_zone_id,
            ChangeBatch={"Comment": "Toilless dns_failover", "Changes": changes},
        )
        change_id = response["ChangeInfo"]["Id"]
        status = response["ChangeInfo"]["Status"]
        deadline = time.monotonic() + wait_seconds
        while status != "INSYNC" and time.monotonic() < deadline:
            time.sleep(poll_seconds)
            status = self.route53.get_change(Id=change_id)["ChangeInfo"]["Status"]
        return {"change_id": change_id, "status": status, "changes": len(changes)}

    def _record(self, template: Mapping[str, Any], address: str, health_check: str | None, ttl: int) -> dict[str, Any]:
        record: dict[str, Any] = {
            "Name": self.record_name,
            "Type": self.record_type,
            "SetIdentifier": check_set_identifier(template.get("SetIdentifier")),
            "Failover": template["Failover"],
            "TTL": ttl,
            "ResourceRecords": [{"Value": address}],
        }
        if health_check:
            record["HealthCheckId"] = health_check
        return record
