"""The intake's answers other than 200, and the internal signals of a lost race (see :mod:`toilless.intake.core`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toilless.intake.plans import Outcome


class IntakeError(Exception):
    """An answer other than 200; ``errors`` say what is wrong, for the caller."""

    status_code = 500

    def __init__(self, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class Rejected(IntakeError):
    """The payload or the conf it yields is invalid: Alertmanager must not retry; nothing started."""

    status_code = 422


class Unavailable(IntakeError):
    """The intake cannot decide now (the metadata DB is busy or unreachable): Alertmanager retries."""

    status_code = 503


class _Contended(Exception):
    """Another delivery won the race for this alert or target; re-read and decide again."""


class _BatchConflict(Exception):
    """A race inside a batched delivery: roll it back and decide each alert in its own transaction."""


class _RunExists(Exception):
    """A run with this id exists already."""


class _AlreadyStarted(Exception):
    """The alert's run exists already: roll back this transaction and answer "duplicate"."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.run_id)
        self.outcome = outcome
