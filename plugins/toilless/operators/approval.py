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
