"""The incident record: one timeline per incident (alert, decisions, gate verdicts, actions, approvals, messages,
acknowledgements, escalations), acknowledgement and escalation along the on-call ladder, and the documents built
from it (post-mortem drafts, the weekly on-call handoff). See docs/incidents.md.

Entry points other code calls:

* :func:`record` (``toilless.incidents.record(kind, incident_id=... | alert=..., actor=..., summary=..., data=...)``):
  never blocks or fails the caller; a failed write waits in the outbox;
* :func:`action_result` (``with action_result("restart", target): ...``): an SOP's irreversible call and its result
  (done / failed with the masked error) on the timeline;
* :func:`acknowledge` (``acknowledge(incident_id, by, via)``): the REST route, the Airflow UI link and Slack buttons
  all call this one.
"""

from __future__ import annotations

from typing import Any

from toilless.incidents.recorder import action_result, flush_outbox, record, record_from_context

__all__ = ["acknowledge", "action_result", "flush_outbox", "record", "record_from_context"]


def acknowledge(incident_id: str, by: str, via: str) -> dict[str, Any]:
    """Acknowledge an incident (see :func:`toilless.incidents.ack.acknowledge`)."""
    from toilless.incidents.ack import acknowledge as _acknowledge

    return _acknowledge(incident_id, by, via)
