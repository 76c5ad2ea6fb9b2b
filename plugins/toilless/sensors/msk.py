"""Wait until an MSK cluster is ACTIVE again with its new broker type, without holding a worker slot (reschedule)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Cluster states from which a broker-type change will not complete by waiting.
FAILED_STATES = frozenset({"FAILED", "DELETING"})


class MskClusterActiveSensor(BaseSensorOperator):
    """Succeeds when the resized cluster is ACTIVE with the target broker type.

    :param resize: result of ``toilless.sops.msk_cpu_headroom.resize.resize_once`` (templated; an XComArg resolves
        natively). Nothing to verify unless its outcome is ``modified`` or ``already_done``.
    :param aws_conn_id: AWS Connection id (templated).
    :param region_name: AWS region (templated); None = the Connection's region.
    :return: (XCom) ``{"state", "instance_type", "done"}``, or ``{}`` when there was nothing to verify.
    """

    template_fields: Sequence[str] = ("resize", "aws_conn_id", "region_name")

    def __init__(
        self, *, resize: Any, aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.resize = resize
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def poke(self, context: Context) -> PokeReturnValue:
        from toilless.hooks.msk import MskHook
        from toilless.sops.msk_cpu_headroom.resize import instance_type

        resize = self.resize or {}
        if resize.get("outcome") not in ("modified", "already_done"):
            self.log.info("No broker-type change to verify (%s)", resize.get("outcome"))
            return PokeReturnValue(is_done=True, xcom_value={})
        hook = MskHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name or None)
        info = hook.describe_cluster(resize["cluster_arn"])
        state, current = info.get("State"), instance_type(info)
        self.log.info(
            "%s: state %s, broker type %s (target %s)", resize["cluster_arn"], state, current, resize["target_type"]
        )
        if state in FAILED_STATES:
            raise RuntimeError(f"cluster went to state {state} after the broker-type change: check the MSK console")
        done = state == "ACTIVE" and current == resize["target_type"]
        return PokeReturnValue(is_done=done, xcom_value={"state": state, "instance_type": current, "done": done})
