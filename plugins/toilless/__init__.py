"""Toilless: the shared library behind the SOP DAGs.

Laid out like an Airflow provider (hooks/, operators/, notifiers/, sensors/, triggers/); plain modules at this level hold
pure logic with no Airflow import (policies, parsing, anomaly maths) so they are cheap to import at DAG-parse time and are
tested directly.
"""

from __future__ import annotations

__version__ = "0.1.0"
