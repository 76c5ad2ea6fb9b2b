"""Alert intake: the Connection holding the token Alertmanager (or curl) presents to ``/toilless/alertmanager``.

The token is made once and kept under the sandbox home, so a second ``make run`` accepts the same one. A real
``AIRFLOW_CONN_TOILLESS_ALERT_INTAKE`` in the environment or .env wins (the launcher keeps real Connections).
"""

from __future__ import annotations

import secrets
from typing import Any

from sandbox.service import SandboxContext, Service

CONN_ID = "toilless_alert_intake"
LOGIN = "alertmanager"
PATH = "/toilless/alertmanager"


class AlertIntakeService(Service):
    name = "alert_intake"
    order = 50
    description = "Alert intake credentials"

    def __init__(self) -> None:
        self.token = ""

    def start(self, ctx: SandboxContext) -> None:
        token_file = ctx.home / "alert-intake-token"
        if not token_file.exists():
            token_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
            token_file.chmod(0o600)
        self.token = token_file.read_text(encoding="utf-8").strip()
        ctx.published["alert_intake"] = {"path": PATH, "login": LOGIN, "token": self.token, "token_file": token_file}

    def connections(self, ctx: SandboxContext) -> dict[str, dict[str, Any]]:
        return {CONN_ID: {"conn_type": "generic", "login": LOGIN, "password": self.token}}

    def summary(self, ctx: SandboxContext) -> str:
        return (
            f"Alertmanager webhook: POST <Airflow URL>{PATH} with 'Authorization: Bearer <token>' "
            f"(token in {ctx.home / 'alert-intake-token'}; Connection {CONN_ID})"
        )
