"""The sandbox's alert-intake service: a Connection with a token that survives a restart of ``make run``."""

from __future__ import annotations

from pathlib import Path

from sandbox.service import SandboxContext
from sandbox.services.alert_intake import CONN_ID, AlertIntakeService


def test_token_is_made_once_and_published(tmp_path: Path) -> None:
    first_ctx = SandboxContext(home=tmp_path)
    first = AlertIntakeService()
    first.start(first_ctx)
    second_ctx = SandboxContext(home=tmp_path)
    second = AlertIntakeService()
    second.start(second_ctx)

    connection = second.connections(second_ctx)[CONN_ID]
    assert len(first.token) >= 24
    assert connection["password"] == first.token
    assert connection["login"] == "alertmanager"
    assert second_ctx.published["alert_intake"]["path"] == "/toilless/alertmanager"
    assert second_ctx.published["alert_intake"]["token"] == first.token
    assert oct((tmp_path / "alert-intake-token").stat().st_mode & 0o777) == "0o600"
    assert "/toilless/alertmanager" in second.summary(second_ctx)
