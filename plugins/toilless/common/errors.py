"""Errors every SOP shares. Pure, no Airflow import.

:class:`InvalidInput` is the one signal for "the configuration or a run's Params are wrong": retrying cannot help.
Pure code raises it (or a subclass: ``toilless.config.ConfigError``, ``toilless.policies.PolicyError``, an SOP's
settings error); ``toilless.dag_defaults.task`` turns it into Airflow's no-retry failure for every task of every DAG.
"""

from __future__ import annotations


class InvalidInput(ValueError):
    """Configuration (YAML, a Variable) or a run's Params are invalid; the message says which value and why.

    A task that raises it fails at once, without retries: the same input fails the same way every time.
    """
