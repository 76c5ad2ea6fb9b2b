"""An approval whose response timeout is decided per run (a Param or setting), not at DAG-parse time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class TimedApprovalOperator(ApprovalOperator):
    """:class:`ApprovalOperator` whose ``response_timeout`` comes from the templated ``timeout_minutes``.

    With ``defaults="Reject"`` (the default here) no answer in time counts as a rejection: nothing changes, and
    ``responded_by_user`` in the result is empty, which tells a timeout from a person's reject.

    :param timeout_minutes: minutes to wait for an answer (templated; a number or a numeric string).
    :return: (XCom) chosen_options, params_input, responded_at, responded_by_user.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "timeout_minutes")

    def __init__(self, *, timeout_minutes: float | str, **kwargs: Any) -> None:
        kwargs.setdefault("defaults", ApprovalOperator.REJECT)
        super().__init__(**kwargs)
        self.timeout_minutes = timeout_minutes

    def execute(self, context: Context) -> Any:
        minutes = float(self.timeout_minutes)
        if minutes <= 0:
            raise ValueError(f"approval timeout must be positive, got {self.timeout_minutes!r} minutes")
        self.response_timeout = timedelta(minutes=minutes)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow.sdk.exceptions import DownstreamTasksSkipped

        from toilless.incidents import recorder

        recorder.approval(context, answer_summary(event))  # who answered what, on the incident timeline
        try:
            return super().execute_complete(context=context, event=event)
        except DownstreamTasksSkipped:
            # Reject (also the timeout default) skips downstream by raising, so nothing would reach XCom; the
            # report needs the answer and who gave it.
            context["ti"].xcom_push(key="return_value", value=answer_summary(event))
            raise


def answer_summary(event: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able part of a HITL answer: chosen options, who answered (None after a timeout) and when."""
    responded_at = event.get("responded_at")
    return {
        "chosen_options": list(event.get("chosen_options") or []),
        "params_input": dict(event.get("params_input") or {}),
        "responded_by_user": event.get("responded_by_user"),
        "responded_at": responded_at.isoformat() if hasattr(responded_at, "isoformat") else responded_at,
    }
