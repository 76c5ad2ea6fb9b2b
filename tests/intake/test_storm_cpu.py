"""Issue 12, the storm: per-alert work of the worker that only depends on the settings is done once per settings
load, not once per alert (each is CPU the worker spends on every one of a storm's acknowledgements)."""

from __future__ import annotations

from typing import Any

import pytest

from toilless.common.config import read_defaults
from toilless.intake import routing
from toilless.intake.core import ServiceCore
from toilless.intake.models import Alert
from toilless.intake.settings import IntakeSettings, facts_for


def _settings() -> IntakeSettings:
    return IntakeSettings(
        intake=read_defaults("alert_intake"),
        toilless={**read_defaults("toilless"), "airflow_base_url": ""},  # Airflow's [api] base_url, as deployed
        routes=routing.RouteTable(()),
        window=None,
    )


def _alert(instance: str) -> Alert:
    return Alert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": "ToillessIntakeSelfTest", "instance": instance, "severity": "info"},
            "annotations": {},
            "startsAt": "2026-11-22T03:00:00Z",
            "fingerprint": "00000000000000aa",
        }
    )


def test_link_hosts_are_worked_out_once_per_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Airflow UI's base URL came from Airflow's configuration (conf.get, about 2 ms) twice for every alert: for
    the link hosts and for the run link."""
    from airflow.configuration import conf

    calls: list[Any] = []
    real = conf.get

    def counting(section: str, key: str, *args: Any, **kwargs: Any) -> Any:
        if (section, key) == ("api", "base_url"):
            calls.append(key)
        return real(section, key, *args, **kwargs)

    monkeypatch.setattr(conf, "get", counting)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    settings = _settings()
    first, _ = facts_for(_alert("a"), "", settings)
    second, _ = facts_for(_alert("b"), "", settings)
    links = [ServiceCore._run_link("dag", f"run-{n}", settings) for n in range(2)]  # every started/skipped ack

    assert len(calls) == 1
    assert "airflow.example.com" in first.link_hosts
    assert first.link_hosts == second.link_hosts
    assert links == [
        "https://airflow.example.com/dags/dag/runs/run-0",
        "https://airflow.example.com/dags/dag/runs/run-1",
    ]
    # A new settings load (settings_ttl_seconds) works them out afresh: a changed link_hosts setting applies.
    changed = IntakeSettings(
        intake={**settings.intake, "link_hosts": ["grafana.example.org"]},
        toilless=settings.toilless,
        routes=settings.routes,
        window=settings.window,
    )
    third, _ = facts_for(_alert("c"), "", changed)
    assert "grafana.example.org" in third.link_hosts
    assert len(calls) == 2
