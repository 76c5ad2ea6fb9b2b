"""The intake's decisions against Airflow: validate a payload completely, accept it durably, then start runs once.

Two steps, so that the HTTP answer waits for nothing but validation and one insert:

* :meth:`IntakeService.accept` (the HTTP handler, :mod:`toilless.intake.accept`): :meth:`IntakeService.plan`
  routes every alert, builds its conf and validates it against the DAG's Params (the same check Airflow's REST API
  runs); a problem is a 4xx and nothing is written; otherwise the delivery goes to the inbox in ONE insert and the
  answer is 200 "accepted".
* :meth:`IntakeService.drain_inbox` (the worker, :mod:`toilless.intake.drain`): decides each accepted delivery in
  ONE transaction with its ledger rows, its runs, its acks (outbox) and its inbox row marked done; one alert's
  decision is :mod:`toilless.intake.decide`.

Where the rest lives: settings and routes in :mod:`toilless.intake.settings`, every SQL statement in
:mod:`toilless.intake.store`, transactions / target locks / triggering / the DAG cache in :mod:`toilless.intake.core`.
This module is the one name the app, the worker and the tests import.
"""

from __future__ import annotations

from toilless.intake.core import ACTIVE_STATES, DAG_CACHE_SIZE, DAG_CACHE_TTL_SECONDS, TRIGGERING_USER
from toilless.intake.drain import DRAIN_ALERTS_PER_TRANSACTION, DRAIN_ROWS_PER_TRANSACTION, Drain
from toilless.intake.errors import IntakeError, Rejected, Unavailable
from toilless.intake.plans import Outcome, Plan
from toilless.intake.settings import IntakeSettings, SettingsProvider, facts_for

__all__ = [
    "ACTIVE_STATES",
    "DAG_CACHE_SIZE",
    "DAG_CACHE_TTL_SECONDS",
    "DRAIN_ALERTS_PER_TRANSACTION",
    "DRAIN_ROWS_PER_TRANSACTION",
    "TRIGGERING_USER",
    "IntakeError",
    "IntakeService",
    "IntakeSettings",
    "Outcome",
    "Plan",
    "Rejected",
    "SettingsProvider",
    "Unavailable",
    "facts_for",
]


class IntakeService(Drain):
    """The webhook's accept path, the worker's drain and queue, and one alert's decision, on one shared state."""
