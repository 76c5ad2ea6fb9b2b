"""The Toilless Airflow plugin: mounts the alert intake (a FastAPI app) in the API server at ``/toilless``.

Every Airflow component imports this file at start, but only the API server reads ``fastapi_apps``; the descriptor
below builds the app on that first read, so schedulers and workers never import FastAPI or the intake.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/toilless"


class _IntakeApps:
    """``fastapi_apps`` computed on first access (a class attribute Airflow reads as ``plugin.fastapi_apps``)."""

    def __get__(self, instance: object, owner: type) -> list[dict[str, Any]]:
        from toilless.intake.app import get_app

        return [{"app": get_app(), "url_prefix": URL_PREFIX, "name": "Toilless alert intake"}]


class ToillessPlugin(AirflowPlugin):
    name = "toilless"
    fastapi_apps = _IntakeApps()  # type: ignore[assignment]
