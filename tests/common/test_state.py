"""The one run-state store: what an unset, unreadable or written value reads back as."""

from __future__ import annotations

import json

import pytest

from toilless.common import state


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, {}, id="unset"),
        pytest.param("  ", {}, id="blank"),
        pytest.param('{"incident": "a"}', {"incident": "a"}, id="object"),
        pytest.param("not json", None, id="not-json"),
        pytest.param("[1, 2]", None, id="not-an-object"),
    ],
)
def test_decode_state(raw: str | None, expected: dict | None) -> None:
    assert state.decode_state(raw, key="k") == expected


def test_written_state_reads_back(monkeypatch: pytest.MonkeyPatch) -> None:
    store: dict[str, str] = {}
    monkeypatch.setenv("AIRFLOW_VAR_TOILLESS_STATE_PROBE", "")  # no leak from the environment

    from airflow.sdk import Variable

    monkeypatch.setattr(Variable, "get", staticmethod(lambda key, default=None: store.get(key, default)))
    monkeypatch.setattr(Variable, "set", staticmethod(lambda key, value: store.__setitem__(key, value)))

    assert state.read_state("toilless_state_probe") == {}
    state.write_state("toilless_state_probe", {"incident": "x", "at": 1.5})
    assert json.loads(store["toilless_state_probe"]) == {"at": 1.5, "incident": "x"}
    assert state.read_state("toilless_state_probe") == {"incident": "x", "at": 1.5}
    store["toilless_state_probe"] = "garbage"
    assert state.read_state("toilless_state_probe") is None
