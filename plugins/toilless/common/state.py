"""Run state that outlives a run: one JSON object per key, kept in an Airflow Variable.

Every SOP that must remember something between runs (a restart marker for once-per-incident, the table-size history
behind a growth hint, the fingerprint of the last report posted) reads and writes it here, so that the storage,
the encoding and what happens to an unreadable value are decided once.

The key is the Variable's full name, unchanged from the SOPs that stored it before this module existed, so state
written by an older version is read back.

Reads happen inside tasks, never at DAG-parse time (a Variable read is a metadata-DB or API call).
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

#: What :func:`read_state` returns for a value that is set but not a JSON object: the caller decides what it means
#: (a restart marker treats it as "acted on for an unknown incident", which matches no real incident).
UNREADABLE = "unreadable"


def decode_state(raw: str | None, *, key: str = "") -> dict[str, Any] | None:
    """The JSON object in ``raw``; ``{}`` when unset or empty; ``None`` when set but not a JSON object."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("State %s is not JSON; treating it as unreadable", key)
        return None
    if not isinstance(value, dict):
        log.warning("State %s is not a JSON object; treating it as unreadable", key)
        return None
    return value


def read_raw_state(key: str) -> str | None:
    """The stored text of ``key`` (None when unset)."""
    from airflow.sdk import Variable

    return Variable.get(key, default=None)


def read_state(key: str) -> dict[str, Any] | None:
    """The state kept under ``key``: ``{}`` when nothing is stored, ``None`` when what is stored is unreadable."""
    return decode_state(read_raw_state(key), key=key)


def write_state(key: str, value: dict[str, Any]) -> None:
    """Replace the state kept under ``key`` (one write: a crash leaves the old or the new value, never a mix)."""
    from airflow.sdk import Variable

    Variable.set(key, json.dumps(value, sort_keys=True, default=str))


def server_read_state(key: str) -> dict[str, Any] | None:
    """:func:`read_state` for code in Airflow's API server (a Toilless route, a Slack press): there is no task
    supervisor to ask, so the Variable is read from the metadata database (the same Variable tasks read)."""
    from airflow.models.variable import Variable

    return decode_state(Variable.get(key, default_var=None), key=key)


def server_write_state(key: str, value: dict[str, Any]) -> None:
    """:func:`write_state` for code in Airflow's API server (see :func:`server_read_state`)."""
    from airflow.models.variable import Variable

    Variable.set(key, json.dumps(value, sort_keys=True, default=str))
