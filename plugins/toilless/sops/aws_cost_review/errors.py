"""The cost review's one error: bad input, named so that it is never retried."""

from __future__ import annotations

from toilless.common.errors import InvalidInput


class CostReviewError(InvalidInput):
    """Bad input to the review (a malformed date, threshold or account id); the message says which.

    Invalid input is never retried (see ``toilless.common.errors``).
    """
