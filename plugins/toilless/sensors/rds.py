"""Wait until requested RDS storage changes have landed, without holding a worker slot (reschedule mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Statuses from which a storage modification will not complete by waiting.
FAILED_STATUSES = frozenset(
    {"failed", "incompatible-parameters", "incompatible-restore", "inaccessible-encryption-credentials"}
)


class RdsStorageExpandedSensor(BaseSensorOperator):
    """Succeeds when every expanded instance has its new allocation and is available (or optimizing storage).

    :param expansions: results of ``toilless.sops.rds_storage_guard.expansion.grow_storage_once`` (templated; an XComArg resolves natively).
        Entries without a change to verify are ignored.
    :param aws_conn_id: AWS Connection id (templated).
    :param region_name: AWS region (templated); None = the Connection's region.
    :return: (XCom) one status dict per verified instance.
    """

    template_fields: Sequence[str] = ("expansions", "aws_conn_id", "region_name")

    def __init__(
        self,
        *,
        expansions: Any,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.expansions = expansions
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def poke(self, context: Context) -> PokeReturnValue:
        from toilless.hooks.rds import RdsHook

        to_verify = [e for e in (self.expansions or []) if e.get("outcome") in ("modified", "already_done")]
        if not to_verify:
            self.log.info("No storage change to verify")
            return PokeReturnValue(is_done=True, xcom_value=[])
        hook = RdsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        statuses = [hook.expansion_status(e["instance_id"], int(e["target_gib"])) for e in to_verify]
        for status in statuses:
            self.log.info(
                "%s: status %s, allocated %s GiB (target %s, pending %s)",
                status["instance_id"],
                status["status"],
                status["allocated_gib"],
                status["target_gib"],
                status["pending_gib"],
            )
            if status["status"] in FAILED_STATUSES:
                raise RuntimeError(
                    f"{status['instance_id']} went to status {status['status']!r} after the storage change: "
                    "check the RDS console and events"
                )
        return PokeReturnValue(is_done=all(s["done"] for s in statuses), xcom_value=statuses)
