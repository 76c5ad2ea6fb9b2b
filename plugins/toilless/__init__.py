"""Toilless: the shared library behind the SOP DAGs.

- ``sops/<dag_id>/``: one package per SOP, pure modules (no Airflow import, tested directly) plus ``steps.py``, the
  task bodies and the package's only Airflow import;
- ``common/``: what every SOP shares (config merge, Params, policies and the action gate, Slack, run state, redaction);
- ``hooks/``, ``operators/``, ``sensors/``, ``triggers/``, ``notifiers/``: one module per external system, as Airflow
  providers are laid out;
- ``intake/``: the Alertmanager webhook app; ``scaffold/``: ``make sop NAME=<dag_id>``.

The house rules in tests/dags/ enforce this shape.
"""

from __future__ import annotations

__version__ = "0.1.0"
