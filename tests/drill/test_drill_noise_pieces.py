"""The noise drill's pieces on the demo app: one malformed request is one 500, counted on the app's /metrics and read
by the scenario's exporter; the sandbox's triage is pointed at the sandbox's own Prometheus and Alertmanager."""

from __future__ import annotations

import json
import urllib.request

import pytest

from sandbox.app_down_data import GOOD_IMAGE, DemoWebApp
from sandbox.deployment_controller import DeploymentController, deployment_body
from sandbox.drill.exporters import EXPORTERS, parse_text
from sandbox.drill.injectors import INJECTORS
from sandbox.kubernetes import KubernetesEmulatorServer
from sandbox.service import SandboxContext
from sandbox.services.alerting import ALERTMANAGER_CONN_ID, PROMETHEUS_CONN_ID
from sandbox.services.triage_alert import TriageAlertService

FIVE_XX = 'http_requests_total{service="web",namespace="shop",deployment="web",code="500"}'
OK = 'http_requests_total{service="web",namespace="shop",deployment="web",code="200"}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a 1\n", {"a": 1.0}, id="bare"),
        pytest.param('# HELP a x\na{b="c d"} 2 1700000000\n', {'a{b="c d"}': 2.0}, id="labels-timestamp-comment"),
        pytest.param('a{b="}"} 3\n', {'a{b="}"}': 3.0}, id="brace-in-value"),
        pytest.param("\n\n", {}, id="empty"),
    ],
)
def test_parse_text(text: str, expected: dict[str, float]) -> None:
    assert parse_text(text) == expected


def test_parse_text_refuses_a_line_without_a_value() -> None:
    with pytest.raises(ValueError, match="not a sample line"):
        parse_text("lonely_metric_name\n")


@pytest.mark.integration
def test_single_5xx_is_exactly_one_500_on_the_apps_metrics() -> None:
    with KubernetesEmulatorServer() as k8s:
        controller = DeploymentController(k8s)
        controller.create(deployment_body("shop", "web", image=GOOD_IMAGE, change_cause="release"))
        controller.start(interval=0.2)
        try:
            with DemoWebApp(controller) as app:
                published = {"app_down": {"app": app.url, "kubernetes": k8s.url}}
                before = EXPORTERS["app_requests"](published)
                assert before[FIVE_XX] == 0.0
                message = INJECTORS["single_5xx"](published)
                assert "answered 500" in message
                with urllib.request.urlopen(f"{app.url}/orders/42", timeout=5) as answer:
                    assert answer.status in (200, 503)  # a well-formed order id is not an error of the app
                after = EXPORTERS["app_requests"](published)
                assert after[FIVE_XX] == 1.0
                assert after.get(OK, 0.0) + after.get(OK.replace("200", "503"), 0.0) >= 1.0
        finally:
            controller.stop()


def test_sandbox_triage_measures_and_silences_with_the_sandbox_stack(tmp_path: object) -> None:
    ctx = SandboxContext(home=tmp_path)  # type: ignore[arg-type]
    override = json.loads(TriageAlertService().variables(ctx)["toilless_triage_alert"])
    assert override["prometheus_conn_id"] == PROMETHEUS_CONN_ID
    assert override["alertmanager_conn_id"] == ALERTMANAGER_CONN_ID
    # A drill must not depend on the day and hour: the sandbox's own Alertmanager is silenced at any time.
    assert override["respect_maintenance_window"] is False
