"""The tags the guard writes on an instance after RDS accepted a storage change, and how they are read back.

The marker gives later runs the time of the last change (RDS's cool-down); the history tag feeds the circuit
breaker. Both are written only after RDS accepted the modification, so a refused request never blocks a run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from toilless.common import aws_contracts

#: Tag the guard writes on an instance after RDS accepted a storage modification: when, from, to, which run. It gives
#: the next runs the time of the last change (cool-down); it never exists for a request RDS refused.
MARKER_TAG = "toilless:storage-guard-last-change"
#: Tag with Toilless's recent storage changes on the instance (epoch seconds), for the circuit breaker.
HISTORY_TAG = "toilless:storage-guard-history"
#: RDS event messages of a storage modification (manual, by this guard, or by storage autoscaling).
STORAGE_EVENT_TEXT = "modification to allocated storage"
#: How far ahead of this worker's clock a marker's time may be and still count (clocks differ a little).
MARKER_CLOCK_SKEW = timedelta(minutes=5)


def parse_marker(value: str) -> datetime | None:
    """The time in an idempotency marker tag value ``<ISO time> run=<run id> from=<GiB> to=<GiB>``."""
    try:
        moment = datetime.fromisoformat(value.split(" ", 1)[0])
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def marker_run(value: str) -> str | None:
    """The (tag-safe) run id in a marker value, or None."""
    for part in value.split(" "):
        if part.startswith("run="):
            return part[4:]
    return None


def marker_value(moment: datetime, run_id: str, from_gib: int, to_gib: int) -> str:
    """Tag value recording a storage change this guard requested, within RDS's tag contract.

    RDS tag values hold only letters, digits, white space and ``_ . : / = + - @`` (at most 256 characters): the run
    id (outside text: a REST caller chooses it) is made tag-safe, and the sizes are ``from=`` / ``to=`` (not ``->``).
    The time comes first and the sizes before the run id, so cutting a long run id keeps what the guard reads.
    """
    head = f"{moment.astimezone(UTC).isoformat(timespec='seconds')} from={from_gib} to={to_gib} run="
    value = head + aws_contracts.tag_safe(run_id, max_length=aws_contracts.TAG_VALUE_MAX - len(head))
    aws_contracts.check_rds_tag("toilless-marker", value)
    return value
