"""The two-person rule for a broker-type change ("do it with a friend"). Pure.

Two human-in-the-loop answers (``first_approval``, ``second_approval``: the XCom of
``toilless.operators.approval.TimedApprovalOperator``) count only if both chose Approve, both were given by a person
(a timeout has no ``responded_by_user``) and the two people differ. A second Approve by the first approver does not
count. People are compared by their user id (the name only when no id is given), case-folded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _who(answer: Mapping[str, Any] | None) -> str | None:
    if not answer:
        return None
    user = answer.get("responded_by_user")
    if isinstance(user, Mapping):
        user = user.get("id") or user.get("name")
    text = str(user).strip() if user is not None else ""
    return text.casefold() or None


def two_person_rule(first: Mapping[str, Any] | None, second: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"approved": bool, "reason": str, "approvers": [...]}`` for the two answers."""
    approvers = [_who(first), _who(second)]
    for label, answer in (("first", first), ("second", second)):
        if not answer or list(answer.get("chosen_options") or []) != ["Approve"]:
            return {"approved": False, "reason": f"the {label} approval was not given", "approvers": approvers}
    if None in approvers:
        return {"approved": False, "reason": "an approval has no approver (timed out?)", "approvers": approvers}
    if approvers[0] == approvers[1]:
        return {
            "approved": False,
            "reason": f"both approvals are by the same person ({approvers[0]}): two different people must approve",
            "approvers": approvers,
        }
    return {"approved": True, "reason": f"approved by {approvers[0]} and {approvers[1]}", "approvers": approvers}
